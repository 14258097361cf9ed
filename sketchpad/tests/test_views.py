import re

import pytest
from django.conf import settings
from django.test import Client
from django.utils.html import escape

from boards.models import Board
from boards.selectors import AUTHOR_SESSION_KEY
from boards.services import thumbnail_render

pytestmark = pytest.mark.django_db


def test_the_gallery_shows_each_board_with_its_thumbnail_or_a_placeholder(client, board):
    Board.objects.create(slug="empty", title="Empty")
    thumbnail_render(board_id=board.pk)
    html = client.get("/").content.decode()
    assert 'data-socket-url="/ws/sketchpad/"' in html
    assert 'href="/friday/"' in html and 'src="/friday/thumbnail.png?v=1"' in html
    empty = html[html.index('data-board="empty"') :]
    assert re.search(r'<img class="thumbnail" alt="" width="320" height="240" hidden>', empty)
    assert escape(board.title) in html and board.title not in html


def test_creating_a_board_needs_the_csrf_token_and_opens_it():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/", {"title": "Retro"}).status_code == 403
    token = client.get("/").cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post("/", {"title": "Retro: what went well?", "csrfmiddlewaretoken": token})
    board = Board.objects.get()
    assert board.title == "Retro: what went well?"
    assert re.fullmatch(r"retro-what-went-well-[0-9a-f]{6}", board.slug)
    assert response.status_code == 302 and response["Location"] == f"/{board.slug}/"


@pytest.mark.parametrize("title", ["", "   ", "x" * 101])
def test_a_board_needs_a_title(client, title):
    response = client.post("/", {"title": title})
    assert response.status_code == 400
    assert 'class="errorlist"' in response.content.decode()
    assert not Board.objects.exists()


def test_a_title_without_letters_still_makes_a_slug(client):
    client.post("/", {"title": "!!!"})
    assert re.fullmatch(r"board-[0-9a-f]{6}", Board.objects.get().slug)


def test_the_board_page_gives_the_browser_an_author_id_that_stays(client, board):
    response = client.get("/friday/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-socket-url="/ws/sketchpad/friday/"' in html
    assert escape(board.title) in html and board.title not in html
    author = client.session[AUTHOR_SESSION_KEY]
    client.get("/friday/")
    assert client.session[AUTHOR_SESSION_KEY] == author
    assert author not in html  # the socket tells the page, not the HTML


def test_unknown_boards_are_404(client):
    assert client.get("/nope/").status_code == 404
    assert client.get("/nope/thumbnail.png").status_code == 404


def test_the_thumbnail_is_a_png_cached_for_good_under_its_versioned_url(client, board):
    assert client.get("/friday/thumbnail.png").status_code == 404  # not rendered yet
    thumbnail_render(board_id=board.pk)
    response = client.get("/friday/thumbnail.png?v=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    assert "immutable" in response["Cache-Control"]
    assert client.get("/friday/thumbnail.png?v=0")["Cache-Control"] == "no-cache"


def test_creating_boards_is_limited_per_address_and_remembers_the_creator(settings, monkeypatch):
    from boards import services

    monkeypatch.setattr(services, "BOARD_CREATE_LIMIT", 2)
    client = Client()
    for title in ["one", "two"]:
        assert client.post("/", {"title": title}).status_code == 302
    refused = client.post("/", {"title": "three"})
    assert refused.status_code == 429
    assert "Too many new boards" in refused.content.decode()
    assert Board.objects.count() == 2
    # Another address may still create one.
    assert Client(REMOTE_ADDR="127.0.0.2").post("/", {"title": "elsewhere"}).status_code == 302
    creator = client.session[AUTHOR_SESSION_KEY]
    assert set(Board.objects.filter(title__in=["one", "two"]).values_list("creator", flat=True)) == {creator}
    page = client.get(Board.objects.get(title="one").get_absolute_url()).content.decode()
    assert 'id="clear"' in page
    assert 'id="clear"' not in Client().get(Board.objects.get(title="one").get_absolute_url()).content.decode()


def test_a_full_boards_snapshot_stays_under_a_mebibyte():
    from boards.wire import BOARD_MAX_POINTS, BOARD_MAX_STROKES, snapshot_frame
    from realtime_common.consumers import frame_encode

    points_each = BOARD_MAX_POINTS // BOARD_MAX_STROKES
    widest = [[0.1234, 0.5678]] * points_each
    strokes = [
        {"stroke": "s" * 64, "author": "a" * 16, "color": "#abcdef", "width": 64, "points": widest}
        for _ in range(BOARD_MAX_STROKES)
    ]
    assert len(frame_encode(frame=snapshot_frame(strokes=strokes, you="a" * 16))) < 1024 * 1024
