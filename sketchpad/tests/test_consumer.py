"""The board and gallery sockets, against the in-memory and the Redis channel layer."""

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.test import Client

from boards import consumers, drawing, selectors, services
from boards.models import Board, Stroke
from boards.selectors import AUTHOR_SESSION_KEY
from boards.services import thumbnail_pending_key, thumbnail_render
from realtime_common import consumers as shared_consumers
from realtime_common.consumers import CLOSE_FLOODING, relay_message
from tests.conftest import draw

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

BOARD = "/ws/sketchpad/friday/"
GALLERY = "/ws/sketchpad/"


@sync_to_async
def stored() -> list[tuple]:
    return list(Stroke.objects.values_list("author", "client_id", "color", "width", "points"))


async def join(connect, path=BOARD, **kwargs):
    """A socket on the board, past its snapshot; returns (socket, snapshot)."""
    socket, connected = await connect(path, **kwargs)
    assert connected
    snapshot = await socket.receive_json_from()
    assert snapshot["type"] == "snapshot"
    return socket, snapshot


async def test_unknown_board_is_refused(connect, board):
    _, connected = await connect("/ws/sketchpad/no-such-board/")
    assert not connected


@pytest.mark.parametrize("path", [BOARD, GALLERY])
async def test_the_site_s_own_origin_connects(connect, board, path):
    _, connected = await connect(path)
    assert connected


@pytest.mark.parametrize("path", [BOARD, GALLERY])
async def test_any_other_origin_is_refused(connect, board, path, hostile_origin):
    _, connected = await connect(path, origin=hostile_origin)
    assert not connected


async def test_a_stroke_reaches_others_while_it_is_drawn_and_is_stored_when_done(connect, board):
    alice, snapshot = await join(connect)
    alice_id = snapshot["you"]
    bob, _ = await join(connect)

    await alice.send_json_to(draw(points=[(0.1, 0.2), (0.3, 0.4)]))
    assert await bob.receive_json_from() == {**draw(points=[(0.1, 0.2), (0.3, 0.4)]), "author": alice_id}
    assert await stored() == []  # not until it is done

    await alice.send_json_to(draw(points=[(0.5, 0.6)], done=True))
    assert await bob.receive_json_from() == {**draw(points=[(0.5, 0.6)], done=True), "author": alice_id}
    assert await stored() == [(alice_id, "s1", "#ff0000", 4, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])]

    # Alice gets none of her own frames back: the next one she receives is Bob's.
    await bob.send_json_to(draw("b1"))
    assert (await alice.receive_json_from())["stroke"] == "b1"


async def test_a_late_joiner_gets_every_finished_stroke_in_order(connect, board):
    alice, snapshot = await join(connect)
    alice_id = snapshot["you"]
    assert snapshot["strokes"] == []
    await alice.send_json_to(draw("first", points=[(0, 0), (1, 1)], color="#00FF00", width=64, done=True))
    await alice.send_json_to(draw("second", done=True))
    await alice.send_json_to(draw("third", done=True))
    await alice.send_json_to(draw("unfinished"))
    await alice.send_json_to({"type": "undo", "stroke": "second"})
    assert (await alice.receive_json_from())["type"] == "erase"  # so everything before it was handled

    late, snapshot = await join(connect)
    assert snapshot["you"] != alice_id
    assert snapshot["strokes"] == [
        {"stroke": "first", "author": alice_id, "color": "#00ff00", "width": 64, "points": [[0, 0], [1, 1]]},
        {"stroke": "third", "author": alice_id, "color": "#ff0000", "width": 4, "points": [[0.25, 0.5]]},
    ]
    # A stroke in progress is not in the snapshot; its next batches arrive live.
    await alice.send_json_to(draw("unfinished", points=[(0.9, 0.9)], done=True))
    assert await late.receive_json_from() == {**draw("unfinished", points=[(0.9, 0.9)], done=True), "author": alice_id}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        (b"\x00\xff", "binary_frame"),
        ("[1, 2]", "bad_frame"),
        ({"type": "scribble"}, "unknown_type"),
        ({"stroke": "s1"}, "unknown_type"),
        (draw(width="4"), "invalid_frame"),
        (draw(width=0), "invalid_frame"),
        (draw(color="red"), "invalid_frame"),
        (draw(stroke="no spaces"), "invalid_frame"),
        ({**draw(), "points": [[0.1]]}, "invalid_frame"),
        ({**draw(), "done": 1}, "invalid_frame"),
        (draw(points=[(0.5, 1.5)]), "out_of_bounds"),
        (draw(points=[(0.5, 0.5)] * 257), "too_many_points"),
        (draw(points=[]), "invalid_frame"),  # a stroke begins with a point
        ({"type": "undo", "stroke": "never-drawn"}, "not_your_stroke"),
        ({"type": "undo"}, "invalid_frame"),
    ],
)
async def test_a_bad_frame_gets_an_error_changes_nothing_and_the_socket_stays_open(connect, board, frame, code):
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    await alice.send_json_to(draw("kept", done=True))
    assert (await bob.receive_json_from())["stroke"] == "kept"

    if isinstance(frame, dict):
        await alice.send_json_to(frame)
    elif isinstance(frame, bytes):
        await alice.send_to(bytes_data=frame)
    else:
        await alice.send_to(text_data=frame)
    error = await alice.receive_json_from()
    assert (error["type"], error["code"]) == ("error", code)
    assert error["detail"]

    # Bob saw nothing of it: the next frame he gets is Alice's next stroke.
    await alice.send_json_to(draw("next"))
    assert (await bob.receive_json_from())["stroke"] == "next"
    assert [row[1] for row in await stored()] == ["kept"]


async def test_a_stroke_keeps_its_colour_and_width(connect, board):
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    await alice.send_json_to(draw(color="#ff0000", width=4))
    assert (await bob.receive_json_from())["color"] == "#ff0000"
    for changed in [draw(color="#0000ff", width=4), draw(color="#ff0000", width=5)]:
        await alice.send_json_to(changed)
        assert (await alice.receive_json_from())["code"] == "invalid_frame"
    await alice.send_json_to(draw(points=[(0.3, 0.3)], done=True))
    assert (await bob.receive_json_from())["points"] == [[0.3, 0.3]]
    assert [row[2:] for row in await stored()] == [("#ff0000", 4, [[0.25, 0.5], [0.3, 0.3]])]


async def test_a_stroke_has_a_length_limit(connect, board, monkeypatch):
    monkeypatch.setattr(drawing, "MAX_STROKE_POINTS", 3)
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    await alice.send_json_to(draw(points=[(0.1, 0.1), (0.2, 0.2)]))
    await alice.send_json_to(draw(points=[(0.3, 0.3), (0.4, 0.4)]))
    assert (await alice.receive_json_from())["code"] == "stroke_too_long"
    await alice.send_json_to(draw(points=[(0.3, 0.3)], done=True))
    assert [(await bob.receive_json_from())["points"] for _ in range(2)] == [[[0.1, 0.1], [0.2, 0.2]], [[0.3, 0.3]]]
    assert [row[4] for row in await stored()] == [[[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]]


async def test_a_connection_draws_a_few_strokes_at_once_at_most(connect, board, monkeypatch):
    monkeypatch.setattr(drawing, "MAX_STROKES_IN_PROGRESS", 2)
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    for stroke in ["finger-1", "finger-2", "finger-3"]:
        await alice.send_json_to(draw(stroke))
    assert (await alice.receive_json_from())["code"] == "too_many_strokes"
    assert [(await bob.receive_json_from())["stroke"] for _ in range(2)] == ["finger-1", "finger-2"]
    # Finishing one makes room for another.
    await alice.send_json_to(draw("finger-1", points=[], done=True))
    await alice.send_json_to(draw("finger-3"))
    assert [(await bob.receive_json_from())["stroke"] for _ in range(2)] == ["finger-1", "finger-3"]


async def test_a_stroke_id_is_used_once_per_author(connect, board):
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    await alice.send_json_to(draw("again", done=True))
    await alice.send_json_to(draw("again"))
    assert (await alice.receive_json_from())["code"] == "duplicate_stroke"
    # Bob may use the same id: strokes are told apart by author and id.
    await bob.send_json_to(draw("again", done=True))
    assert (await alice.receive_json_from())["stroke"] == "again"
    assert len(await stored()) == 2


async def test_clear_empties_the_board_for_everyone_but_spares_strokes_in_progress(connect, board, creator_cookie):
    alice, _ = await join(connect, headers=[creator_cookie])
    bob, snapshot = await join(connect)
    bob_id = snapshot["you"]
    await alice.send_json_to(draw("old", done=True))
    assert (await bob.receive_json_from())["stroke"] == "old"
    await bob.send_json_to(draw("drawing", points=[(0.1, 0.1)]))
    assert (await alice.receive_json_from())["stroke"] == "drawing"

    await alice.send_json_to({"type": "clear"})
    assert await alice.receive_json_from() == {"type": "clear"}
    assert await bob.receive_json_from() == {"type": "clear"}
    assert await stored() == []
    _, snapshot = await join(connect)
    assert snapshot["strokes"] == []

    await bob.send_json_to(draw("drawing", points=[(0.2, 0.2)], done=True))
    assert (await alice.receive_json_from())["done"] is True
    assert await stored() == [(bob_id, "drawing", "#ff0000", 4, [[0.1, 0.1], [0.2, 0.2]])]


async def test_undo_erases_ones_own_stroke_for_everyone_and_only_ones_own(connect, board):
    alice, snapshot = await join(connect)
    alice_id = snapshot["you"]
    bob, _ = await join(connect)
    await alice.send_json_to(draw("mine", done=True))
    assert (await bob.receive_json_from())["stroke"] == "mine"

    await bob.send_json_to({"type": "undo", "stroke": "mine"})
    assert (await bob.receive_json_from())["code"] == "not_your_stroke"
    assert len(await stored()) == 1

    await alice.send_json_to({"type": "undo", "stroke": "mine"})
    for socket in [alice, bob]:
        assert await socket.receive_json_from() == {"type": "erase", "stroke": "mine", "author": alice_id}
    assert await stored() == []
    await alice.send_json_to({"type": "undo", "stroke": "mine"})
    assert (await alice.receive_json_from())["code"] == "not_your_stroke"


async def test_the_same_browser_may_undo_its_strokes_after_reconnecting(connect, board):
    @sync_to_async
    def browser_session():
        session = SessionStore()
        session[AUTHOR_SESSION_KEY] = "browser-1"
        session.create()
        return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode())

    cookie = await browser_session()
    before, snapshot = await join(connect, headers=[cookie])
    assert snapshot["you"] == "browser-1"
    await before.send_json_to(draw("from-before", done=True))
    await before.disconnect()

    after, snapshot = await join(connect, headers=[cookie])
    assert [stroke["author"] for stroke in snapshot["strokes"]] == ["browser-1"]
    await after.send_json_to({"type": "undo", "stroke": "from-before"})
    frame = await after.receive_json_from()
    if frame["type"] == "draw":
        # The stroke's last batch, relayed while this socket joined: pages ignore
        # draw frames of strokes their snapshot has (the pub/sub layer delivers
        # what a process receives after the join, whenever it was sent).
        assert frame["stroke"] == "from-before"
        frame = await after.receive_json_from()
    assert frame == {"type": "erase", "stroke": "from-before", "author": "browser-1"}


async def test_a_stroke_left_unfinished_is_erased_for_the_others_and_not_stored(connect, board):
    alice, snapshot = await join(connect)
    alice_id = snapshot["you"]
    bob, _ = await join(connect)
    await alice.send_json_to(draw("half"))
    assert (await bob.receive_json_from())["stroke"] == "half"
    await alice.disconnect()
    assert await bob.receive_json_from() == {"type": "erase", "stroke": "half", "author": alice_id}
    assert await stored() == []


async def test_a_flooding_page_is_refused_then_closed(connect, board, monkeypatch):
    # No refill, so the test does not depend on how fast it runs.
    monkeypatch.setattr(consumers.BoardConsumer, "frame_rate", 0)
    monkeypatch.setattr(consumers.BoardConsumer, "frame_burst", 2)
    monkeypatch.setattr(shared_consumers, "REFUSALS_PER_SECOND", 0)
    monkeypatch.setattr(shared_consumers, "REFUSAL_BURST", 3)
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    for number in range(10):
        await alice.send_json_to(draw(f"flood-{number}", done=True))

    for _ in range(3):
        assert (await alice.receive_json_from())["code"] == "rate_limited"
    assert await alice.receive_output() == {"type": "websocket.close", "code": CLOSE_FLOODING}
    assert [(await bob.receive_json_from())["stroke"] for _ in range(2)] == ["flood-0", "flood-1"]
    assert [row[1] for row in await stored()] == ["flood-0", "flood-1"]


async def test_a_stroke_finished_after_its_board_was_deleted_is_erased(connect, board, creator_cookie):
    alice, snapshot = await join(connect, headers=[creator_cookie])
    alice_id = snapshot["you"]
    bob, _ = await join(connect)
    await alice.send_json_to(draw("orphan"))
    assert (await bob.receive_json_from())["stroke"] == "orphan"
    await sync_to_async(Board.objects.all().delete)()

    await alice.send_json_to(draw("orphan", points=[(0.6, 0.6)], done=True))
    erase = {"type": "erase", "stroke": "orphan", "author": alice_id}
    assert await bob.receive_json_from() == erase
    assert (await alice.receive_json_from())["code"] == "not_stored"
    assert await alice.receive_json_from() == erase
    await alice.send_json_to({"type": "clear"})
    assert await alice.receive_json_from() == {"type": "clear"}


async def test_other_boards_hear_nothing(connect, board):
    await sync_to_async(Board.objects.create)(slug="other", title="Other")
    alice, _ = await join(connect)
    other, _ = await join(connect, "/ws/sketchpad/other/")
    carol, _ = await join(connect, "/ws/sketchpad/other/")
    await alice.send_json_to(draw("for-friday", done=True))
    await alice.send_json_to({"type": "clear"})
    await carol.send_json_to(draw("for-other"))
    # Had Alice's frames leaked, they would arrive first.
    assert (await other.receive_json_from())["stroke"] == "for-other"


async def test_finished_strokes_undo_and_clear_ask_for_a_thumbnail(connect, board, worker_layer, creator_cookie):
    alice, _ = await join(connect, headers=[creator_cookie])
    request = {"type": "thumbnail.render", "board": board.pk}
    for frame in [draw("s1", done=True), {"type": "undo", "stroke": "s1"}, {"type": "clear"}]:
        await alice.send_json_to(frame)
        assert await worker_layer.receive(settings.THUMBNAIL_CHANNEL) == request
        # What the worker does first; until then, further requests are coalesced (see test_worker).
        await sync_to_async(cache.delete)(thumbnail_pending_key(board_id=board.pk))


async def test_the_gallery_gets_every_thumbnail_on_connect_then_each_new_one(connect, board, channel_layer):
    await sync_to_async(Board.objects.create)(slug="empty", title="Empty")
    rendered = await sync_to_async(thumbnail_render)(board_id=board.pk)
    gallery, connected = await connect(GALLERY)
    assert connected
    assert await gallery.receive_json_from() == {
        "type": "thumbnails",
        "boards": {"empty": None, "friday": f"/friday/thumbnail.png?v={rendered.thumbnail_version}"},
    }

    frame = {"type": "thumbnails", "boards": {"friday": "/friday/thumbnail.png?v=2"}}
    await channel_layer.group_send("gallery", relay_message(frame=frame))
    assert await gallery.receive_json_from() == frame

    await gallery.send_json_to({"type": "draw"})
    assert (await gallery.receive_json_from())["code"] == "read_only"


async def test_a_gallery_page_flooding_its_socket_is_refused_then_closed(connect, board, monkeypatch):
    # No refill, so the test does not depend on how fast it runs.
    monkeypatch.setattr(consumers.GalleryConsumer, "frame_rate", 0)
    monkeypatch.setattr(consumers.GalleryConsumer, "frame_burst", 1)
    monkeypatch.setattr(shared_consumers, "REFUSALS_PER_SECOND", 0)
    monkeypatch.setattr(shared_consumers, "REFUSAL_BURST", 1)
    gallery, connected = await connect("/ws/sketchpad/")
    assert connected and (await gallery.receive_json_from())["type"] == "thumbnails"
    for frame in [b"\x00", b"\x01", b"\x02", b"\x03"]:
        await gallery.send_to(bytes_data=frame)
    assert [(await gallery.receive_json_from())["code"] for _ in range(2)] == ["read_only", "rate_limited"]
    assert await gallery.receive_output() == {"type": "websocket.close", "code": CLOSE_FLOODING}


async def test_only_the_boards_creator_and_staff_may_clear_it(connect, board, settings):
    stranger, _ = await join(connect)
    await stranger.send_json_to(draw("kept", done=True))
    await stranger.send_json_to({"type": "clear"})
    assert (await stranger.receive_json_from())["code"] == "not_your_board"
    assert [row[1] for row in await stored()] == ["kept"]

    @sync_to_async
    def staff_cookie():
        staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
        client = Client()
        client.force_login(staff)
        return b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()

    staff, _ = await join(connect, headers=[await staff_cookie()])
    await staff.send_json_to({"type": "clear"})
    assert await staff.receive_json_from() == {"type": "clear"}
    assert await stored() == []


async def test_a_full_board_refuses_new_strokes_at_their_start_and_at_their_end(connect, board, monkeypatch):
    for module in (selectors, services):
        monkeypatch.setattr(module, "BOARD_MAX_STROKES", 2)
    alice, snapshot = await join(connect)
    bob, _ = await join(connect)
    await alice.send_json_to(draw("one", done=True))
    await alice.send_json_to(draw("two"))  # begun while there is room
    await alice.send_json_to(draw("three", done=True))  # takes the last place
    assert [(await bob.receive_json_from())["stroke"] for _ in range(3)] == ["one", "two", "three"]

    await alice.send_json_to(draw("two", points=[(0.7, 0.7)], done=True))
    erase = {"type": "erase", "stroke": "two", "author": snapshot["you"]}
    assert await bob.receive_json_from() == erase
    assert (await alice.receive_json_from())["code"] == "board_full"
    assert await alice.receive_json_from() == erase
    await alice.send_json_to(draw("four"))
    assert (await alice.receive_json_from())["code"] == "board_full"
    assert await bob.receive_nothing(timeout=0.1)
    assert [row[1] for row in await stored()] == ["one", "three"]

    # Undo makes room again.
    await alice.send_json_to({"type": "undo", "stroke": "one"})
    assert (await alice.receive_json_from())["type"] == "erase"
    await alice.send_json_to(draw("five", done=True))
    assert (await bob.receive_json_from())["type"] == "erase"
    assert (await bob.receive_json_from())["stroke"] == "five"


async def test_a_connection_holds_a_bounded_number_of_points_in_progress(connect, board, monkeypatch):
    monkeypatch.setattr(drawing, "MAX_POINTS_IN_PROGRESS", 3)
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    await alice.send_json_to(draw("a", points=[(0.1, 0.1), (0.2, 0.2)]))
    await alice.send_json_to(draw("b", points=[(0.3, 0.3), (0.4, 0.4)]))
    assert (await alice.receive_json_from())["code"] == "too_much_in_progress"
    await alice.send_json_to(draw("a", points=[(0.5, 0.5)], done=True))  # finishing frees its points
    await alice.send_json_to(draw("b", points=[(0.3, 0.3), (0.4, 0.4)]))
    assert [(await bob.receive_json_from())["stroke"] for _ in range(3)] == ["a", "a", "b"]
