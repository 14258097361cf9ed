import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from rooms.models import Room

pytestmark = pytest.mark.django_db


def test_seed_is_idempotent_and_creates_the_demo_users_only_in_debug(settings):
    settings.DEBUG = False
    call_command("seed")
    call_command("seed")
    assert list(Room.objects.values_list("slug", "staff_only")) == [
        ("lobby", False),
        ("random", False),
        ("staff-room", True),
    ]
    assert not get_user_model().objects.exists()

    settings.DEBUG = True
    call_command("seed")
    call_command("seed")
    users = get_user_model().objects.order_by("username")
    assert [(user.username, user.is_staff) for user in users] == [("alice", False), ("bob", False), ("carol", True)]
    assert users[0].check_password("alice")
