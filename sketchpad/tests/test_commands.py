import pytest
from django.core.management import call_command

from boards.models import Board, Stroke

pytestmark = pytest.mark.django_db


def test_seed_creates_demo_boards_with_thumbnails_and_is_idempotent():
    call_command("seed")
    call_command("seed")
    boards = {board.slug: board for board in Board.objects.all()}
    assert set(boards) == {"welcome", "sandbox"}
    assert Stroke.objects.filter(board=boards["welcome"]).count() == 4
    assert boards["welcome"].thumbnail_version == 1
    assert bytes(boards["welcome"].thumbnail).startswith(b"\x89PNG")
