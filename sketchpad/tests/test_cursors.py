"""Live cursors on the board socket, against the in-memory and the Redis channel layer."""

import asyncio
import logging
import re
import types

import pytest
import redis
from asgiref.sync import sync_to_async
from django.core.cache import cache

from boards import cursors
from boards.consumers import BoardConsumer
from boards.cursors import CURSOR_BURST, CURSOR_RATE, author_badge
from boards.models import Board
from boards.wire import Cursor
from realtime_common.throttle import TokenBucket
from tests.conftest import CREATOR, draw
from tests.test_consumer import join, stored

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

# Long enough for a frame to cross Redis on a busy machine; a wait only runs out when something is wrong.
WAIT = 5


def cursor(x, y) -> dict:
    """A cursor frame as a page sends it."""
    return {"type": "cursor", "x": x, "y": y}


def seen(author: str, x, y) -> dict:
    """The frame the other pages get for the cursor of ``author``, but its socket's id (``cursor_next``)."""
    name, color = author_badge(author=author)
    return {"type": "cursor", "author": author, "name": name, "color": color, "x": x, "y": y}


async def pages_join(connect, *, count: int) -> list[tuple]:
    """``count`` pages joined to the board in turn, each with the author its cursor is seen as (``seen``):
    its snapshot's ``you``."""
    pages = []
    for _ in range(count):
        page, snapshot = await join(connect)
        pages.append((page, snapshot["you"]))
    return pages


async def cursor_next(page) -> dict:
    """The page's next frame, a cursor's, without the id of the socket it comes from."""
    frame = await page.receive_json_from(timeout=WAIT)
    assert isinstance(frame.pop("id", None), str), frame
    return frame


async def test_a_cursor_reaches_every_other_page_of_the_board_with_its_author_s_name_and_colour(connect, board):
    (alice, alice_id), (bob, _), (carol, _) = await pages_join(connect, count=3)
    await sync_to_async(Board.objects.create)(slug="other", title="Other")
    elsewhere, _ = await join(connect, "/ws/sketchpad/other/")

    await alice.send_json_to(cursor(0.123456, 1))
    for page in [bob, carol]:
        assert await cursor_next(page) == seen(alice_id, 0.1235, 1)
    await alice.send_json_to(cursor(None, None))
    for page in [bob, carol]:
        assert await cursor_next(page) == seen(alice_id, None, None)

    # The same author id as on her strokes, so that a page can tell whose cursor draws what.
    await alice.send_json_to(draw(done=True))
    assert (await bob.receive_json_from(timeout=WAIT))["author"] == alice_id
    # Alice got none of it back, and another board heard nothing.
    assert await alice.receive_nothing(timeout=0.1)
    assert await elsewhere.receive_nothing(timeout=0.1)


def test_a_badge_is_a_short_name_and_a_colour_fixed_by_the_author_id():
    badges = {author: author_badge(author=author) for author in ["creator-1", "x", "a" * 64, "ß\U0001f600"]}
    for author, (name, color) in badges.items():
        assert author_badge(author=author) == (name, color)
        assert 0 < len(name) <= 16
        assert color.startswith("#") and len(color) == 7
    assert len(set(badges.values())) > 1


async def test_a_cursor_is_taken_off_the_others_when_its_page_closes(connect, board):
    (alice, alice_id), (bob, _), (carol, _) = await pages_join(connect, count=3)
    await alice.send_json_to(cursor(0.5, 0.5))
    assert await cursor_next(bob) == seen(alice_id, 0.5, 0.5)
    await alice.disconnect()
    assert await cursor_next(bob) == seen(alice_id, None, None)

    # A page whose cursor the others do not show goes without a word.
    await carol.send_json_to(cursor(0.5, 0.5))
    await carol.send_json_to(cursor(None, None))
    assert [(await bob.receive_json_from(timeout=WAIT))["x"] for _ in range(2)] == [0.5, None]
    await carol.disconnect()
    assert await bob.receive_nothing(timeout=0.2)


@pytest.fixture
def clock(monkeypatch, settings):
    """The cursors' clock, moved by the test; the sweeper still sweeps in real time, every 0.1 s."""
    settings.CURSOR_IDLE_SECONDS = 1.0
    now = [1000.0]
    monkeypatch.setattr(cursors, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


@pytest.fixture
def claims_at_every_frame(monkeypatch):
    """A cursor refused a place claims again at its next frame, not a second later (CLAIM_RETRY_SECONDS):
    a place freed is taken at once, without the test waiting out the retry."""
    monkeypatch.setattr(cursors, "CLAIM_RETRY_SECONDS", 0)


async def handled(page) -> None:
    """Every frame the page sent so far was handled: the answer to a bad one, sent after them, is
    back (the other pages' cursors may come first)."""
    await page.send_json_to(cursor(2, 2))
    while (frame := await page.receive_json_from(timeout=WAIT))["type"] == "cursor":
        pass
    assert frame["code"] == "out_of_bounds", frame


async def test_a_cursor_idle_for_the_limit_is_taken_off_everywhere_and_frees_its_place(
    connect, board, clock, monkeypatch, claims_at_every_frame
):
    monkeypatch.setattr(cursors, "CURSORS_PER_BOARD", 1)
    (alice, alice_id), (bob, bob_id), (carol, _) = await pages_join(connect, count=3)
    await alice.send_json_to(cursor(0.1, 0.1))
    for page in [bob, carol]:
        assert await cursor_next(page) == seen(alice_id, 0.1, 0.1)

    clock[0] += 0.9
    assert await bob.receive_nothing(timeout=0.35)  # several sweeps: not idle yet
    await alice.send_json_to(cursor(0.2, 0.2))
    for page in [bob, carol]:
        assert await cursor_next(page) == seen(alice_id, 0.2, 0.2)
    clock[0] += 0.9  # 1.8 s since her first move, 0.9 s since her last
    assert await bob.receive_nothing(timeout=0.35)
    # Bob's cursor finds the board's one place taken: not relayed.
    await bob.send_json_to(cursor(0.3, 0.3))
    await handled(bob)

    clock[0] += 0.1
    for page in [bob, carol]:
        assert await cursor_next(page) == seen(alice_id, None, None)
    assert await alice.receive_nothing(timeout=0.1)
    await bob.send_json_to(cursor(0.4, 0.4))
    assert await cursor_next(carol) == seen(bob_id, 0.4, 0.4)


async def test_at_most_so_many_cursors_per_board_are_relayed_until_a_page_closes(
    connect, board, monkeypatch, claims_at_every_frame
):
    monkeypatch.setattr(cursors, "CURSORS_PER_BOARD", 2)
    watcher, _ = await join(connect)
    (alice, alice_id), (bob, bob_id), (carol, carol_id) = await pages_join(connect, count=3)
    await alice.send_json_to(cursor(0.5, 0.5))
    assert await cursor_next(watcher) == seen(alice_id, 0.5, 0.5)
    await bob.send_json_to(cursor(0.5, 0.5))
    assert await cursor_next(watcher) == seen(bob_id, 0.5, 0.5)
    await carol.send_json_to(cursor(0.5, 0.5))
    await handled(carol)
    # A pointer that left the board keeps its place a while: Carol still has none.
    await bob.send_json_to(cursor(None, None))
    assert await cursor_next(watcher) == seen(bob_id, None, None)
    await carol.send_json_to(cursor(0.7, 0.7))
    await handled(carol)
    # Had Carol's frames been relayed, they would have come before this one.
    await alice.send_json_to(cursor(0.6, 0.6))
    assert await cursor_next(watcher) == seen(alice_id, 0.6, 0.6)

    await alice.disconnect()
    assert await cursor_next(watcher) == seen(alice_id, None, None)
    await carol.send_json_to(cursor(0.9, 0.9))
    assert await cursor_next(watcher) == seen(carol_id, 0.9, 0.9)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (cursor(1.5, 0.5), "out_of_bounds"),
        (cursor(0.5, -0.0001), "out_of_bounds"),
        (cursor("0.5", 0.5), "out_of_bounds"),
        (cursor(True, 0.5), "out_of_bounds"),
        (cursor(0.5, False), "out_of_bounds"),
        (cursor(None, 0.5), "out_of_bounds"),
        (cursor(0.5, None), "out_of_bounds"),
        (cursor([0.5], 0.5), "out_of_bounds"),
        (cursor({"x": 0.5}, 0.5), "out_of_bounds"),
        ('{"type": "cursor", "x": NaN, "y": 0.5}', "out_of_bounds"),
        ('{"type": "cursor", "x": 0.5, "y": Infinity}', "out_of_bounds"),
        ('{"type": "cursor", "x": 1e400, "y": 0.5}', "out_of_bounds"),
        ('{"type": "cursor", "x": 0.5, "y": 1' + "0" * 400 + "}", "out_of_bounds"),
        ({"type": "cursor", "x": 0.5}, "invalid_frame"),
        ({"type": "cursor"}, "invalid_frame"),
    ],
)
async def test_a_bad_cursor_frame_gets_an_error_reaches_no_one_and_the_socket_stays_open(connect, board, frame, code):
    (alice, alice_id), (bob, _) = await pages_join(connect, count=2)
    if isinstance(frame, dict):
        await alice.send_json_to(frame)
    else:
        await alice.send_to(text_data=frame)
    error = await alice.receive_json_from(timeout=WAIT)
    assert (error["type"], error["code"]) == ("error", code)
    assert error["detail"]
    # Bob saw nothing of it: the next frame he gets is Alice's next cursor.
    await alice.send_json_to(cursor(0.5, 0.5))
    assert await cursor_next(bob) == seen(alice_id, 0.5, 0.5)


async def test_cursor_frames_past_their_rate_are_dropped_removals_included(connect, board, monkeypatch):
    # No refill, so the test does not depend on how fast it runs.
    monkeypatch.setattr(cursors, "CURSOR_RATE", 0)
    monkeypatch.setattr(cursors, "CURSOR_BURST", 3)
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    # Removals between the moves would double what is relayed, were they free.
    for number in range(1, 4):
        await alice.send_json_to(cursor(number / 10, 0.5))
        await alice.send_json_to(cursor(None, None))
    await handled(alice)  # dropped without a word: the next one tells where it is
    # The socket's own frame rate is untouched: drawing goes on, and bob got three cursor frames before it.
    await alice.send_json_to(draw())
    assert [(await bob.receive_json_from(timeout=WAIT))["x"] for _ in range(3)] == [0.1, None, 0.2]
    assert (await bob.receive_json_from(timeout=WAIT))["type"] == "draw"


def test_a_page_drawing_and_moving_its_cursor_at_full_speed_stays_within_both_rates():
    """A page sends a draw batch every 30 ms and a cursor frame every 50 ms; the network may
    hold them back for a while and deliver them at once. None of them may be refused."""
    now = [0.0]
    frames = TokenBucket(rate=BoardConsumer.frame_rate, burst=BoardConsumer.frame_burst, clock=lambda: now[0])
    cursor_frames = TokenBucket(rate=CURSOR_RATE, burst=CURSOR_BURST, clock=lambda: now[0])
    sent = sorted([("draw", tick * 0.030) for tick in range(2000)] + [("cursor", tick * 0.050) for tick in range(1200)])
    # Delivered as sent, except that whatever was sent during each 1 s stall arrives at its end.
    arrivals = sorted((sent_at if sent_at % 10 < 9 else sent_at // 1 + 1, kind) for kind, sent_at in sent)
    for arrival, kind in arrivals:
        now[0] = arrival
        assert frames.take(), f"{kind} at {arrival:.3f} s: over the socket's frame rate"
        if kind == "cursor":
            assert cursor_frames.take(), f"cursor at {arrival:.3f} s: over the cursor rate"


async def test_cursors_are_never_stored_nor_in_a_snapshot(connect, board):
    alice, _ = await join(connect)
    bob, _ = await join(connect)
    await alice.send_json_to(cursor(0.5, 0.5))
    assert (await bob.receive_json_from(timeout=WAIT))["type"] == "cursor"

    late, snapshot = await join(connect)
    assert snapshot == {"type": "snapshot", "you": snapshot["you"], "strokes": []}
    assert await late.receive_nothing(timeout=0.1)  # it sees the cursor when it next moves
    assert await stored() == []
    counts = Board.objects.filter(pk=board.pk).values_list("strokes_count", "points_count", "strokes_version")
    assert await sync_to_async(counts.get)() == (0, 0, 0)


class StaleCursor:
    """A cursor whose consumer ended without disconnect() (it crashed, or was cancelled)."""

    def __init__(self, *, moved_at: float):
        self.moved_at = moved_at

    def is_idle(self, *, now: float) -> bool:
        return True


async def test_the_sweeper_forgets_a_cursor_nobody_answers_for_once_its_place_has_expired(clock, monkeypatch):
    told = asyncio.Event()

    async def idle_tell(self, *, cursor):
        told.set()

    monkeypatch.setattr(cursors.CursorSweeper, "idle_tell", idle_tell)
    sweeper = cursors.sweeper_get()
    stale = StaleCursor(moved_at=clock[0])
    sweeper.watch(stale)
    await asyncio.wait_for(told.wait(), timeout=WAIT)  # idle: told at each sweep while its place may be held
    clock[0] += cursors.place_lease() + 1
    await asyncio.wait_for(sweeper.task, timeout=WAIT)  # forgotten, and with nothing left to watch, done
    assert stale not in sweeper.cursors


async def test_a_cursor_whose_lease_ran_out_leaves_the_place_another_cursor_took(
    clock, monkeypatch, claims_at_every_frame
):
    monkeypatch.setattr(cursors, "CURSORS_PER_BOARD", 1)
    alice = cursors.CursorSender(board_id=1, author="alice", channel_name="alice-channel")
    bob = cursors.CursorSender(board_id=1, author="bob", channel_name="bob-channel")
    assert await sync_to_async(alice.move)(Cursor(x=0.1, y=0.1)) is not None
    place = alice.place
    await sync_to_async(cache.delete)(place)  # her lease ran out while her consumer stalled...
    assert await sync_to_async(bob.move)(Cursor(x=0.2, y=0.2)) is not None  # ...and bob took the one place
    clock[0] += 0.5  # her renewal is due: it finds the place bob's, and no other free
    assert await sync_to_async(alice.move)(Cursor(x=0.3, y=0.3)) is None
    assert await sync_to_async(cache.get)(place) == "bob-channel"
    await sync_to_async(alice.release)()
    assert await sync_to_async(cache.get)(place) == "bob-channel"  # nor does she free his place
    await sync_to_async(bob.release)()
    assert await sync_to_async(cache.get)(place) is None


async def test_a_page_keeps_its_place_only_by_moving_its_cursor_not_by_removing_it(
    connect, board, clock, monkeypatch, claims_at_every_frame
):
    monkeypatch.setattr(cursors, "CURSORS_PER_BOARD", 1)
    (alice, _), (bob, bob_id), (watcher, _) = await pages_join(connect, count=3)
    await alice.send_json_to(cursor(0.1, 0.1))
    assert (await cursor_next(watcher))["x"] == 0.1
    sweeping = cursors.sweeper_get().task

    clock[0] += 0.9
    await alice.send_json_to(cursor(None, None))  # her pointer left the board: not a move
    assert (await cursor_next(watcher))["x"] is None
    clock[0] += 0.2  # 1.1 s after her last move, 0.2 s after she left
    # Idle: her place is given back, and with nothing left to watch the sweeper ends.
    await asyncio.wait_for(sweeping, timeout=WAIT)
    await bob.send_json_to(cursor(0.3, 0.3))
    assert await cursor_next(watcher) == seen(bob_id, 0.3, 0.3)


async def test_two_tabs_of_one_browser_are_two_cursors_told_apart_by_their_socket(connect, board, creator_cookie):
    first, snapshot = await join(connect, headers=[creator_cookie])
    second, _ = await join(connect, headers=[creator_cookie])
    bob, _ = await join(connect)
    assert snapshot["you"] == CREATOR
    await first.send_json_to(cursor(0.1, 0.1))
    one = await bob.receive_json_from(timeout=WAIT)
    await second.send_json_to(cursor(0.9, 0.9))
    other = await bob.receive_json_from(timeout=WAIT)
    assert one["author"] == other["author"] == CREATOR
    assert one["id"] != other["id"]
    # Short and random: not the channel name, which names the socket to the channel layer.
    assert re.fullmatch(r"[A-Za-z0-9_-]{8}", one["id"])

    # One tab's pointer leaves the board: only its own cursor goes.
    await first.send_json_to(cursor(0.2, 0.2))
    await first.send_json_to(cursor(None, None))
    assert [((frame := await bob.receive_json_from(timeout=WAIT))["id"], frame["x"]) for _ in range(2)] == [
        (one["id"], 0.2),
        (one["id"], None),
    ]
    await second.send_json_to(cursor(0.8, 0.8))
    assert ((frame := await bob.receive_json_from(timeout=WAIT))["id"], frame["x"]) == (other["id"], 0.8)


class CacheAway:
    """The cache while its Redis is away: every call fails as Django's Redis cache does. Counts the calls."""

    def __init__(self):
        self.calls = 0

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls += 1
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        return call


async def test_while_the_cache_is_away_cursor_frames_are_dropped_without_a_word_and_logged_once(
    connect, board, clock, monkeypatch, caplog, claims_at_every_frame
):
    caplog.set_level(logging.INFO, logger="boards.cursors")
    (alice, alice_id), (bob, bob_id), (watcher, _) = await pages_join(connect, count=3)
    await alice.send_json_to(cursor(0.1, 0.1))
    assert await cursor_next(watcher) == seen(alice_id, 0.1, 0.1)

    away = CacheAway()
    monkeypatch.setattr(cursors, "cache", away)
    clock[0] += 0.5  # alice's renewal is due; bob has no place yet and claims at every frame
    for number in range(1, 6):
        for page in (alice, bob):
            await page.send_json_to(cursor(0.5, number / 10))
    # No error for either page (a page shows one as a banner): the next thing each gets is the answer to a bad frame.
    for page in (alice, bob):
        await handled(page)
    # Alice's failed renewal dropped her frame and waits for the next one's turn; her place is hers meanwhile.
    assert [(await cursor_next(watcher))["y"] for _ in range(4)] == [0.2, 0.3, 0.4, 0.5]
    assert away.calls == 1 + 5
    monkeypatch.setattr(cursors, "cache", cache)
    await bob.send_json_to(cursor(0.7, 0.7))
    assert await cursor_next(watcher) == seen(bob_id, 0.7, 0.7)

    logged = [(record.levelname, record.getMessage()) for record in caplog.records if record.name == "boards.cursors"]
    assert logged == [
        (
            "WARNING",
            "cursors: could not claim or renew a place (ConnectionError: Error 111 connecting to 127.0.0.1:6379. "
            "Connection refused.); cursors are not relayed meanwhile",
        ),
        ("INFO", "cursors: places are claimed again (6 cursor frames were dropped)"),
    ]


async def test_a_cursor_the_sweeper_took_for_gone_is_watched_again_once_it_renews_its_place(clock):
    alice = cursors.CursorSender(board_id=1, author="alice", channel_name="alice-channel")
    assert await sync_to_async(alice.move)(Cursor(x=0.1, y=0.1)) is not None
    sweeper = cursors.sweeper_get()
    sweeping = sweeper.task
    # Her consumer stalled past her lease, which ran out: the sweeper takes it for gone, and forgets her.
    clock[0] += cursors.place_lease() + 1
    await sync_to_async(cache.delete)(alice.place)
    await asyncio.wait_for(sweeping, timeout=WAIT)
    assert alice not in sweeper.cursors

    # Her consumer carries on: the renewal takes her place back, and the sweeper watches her again,
    # or, idle, her cursor would stay frozen on the other pages.
    assert await sync_to_async(alice.move)(Cursor(x=0.2, y=0.2)) is not None
    assert alice in sweeper.cursors
    assert not sweeper.task.done()
    await sync_to_async(alice.release)()
    assert alice not in sweeper.cursors
