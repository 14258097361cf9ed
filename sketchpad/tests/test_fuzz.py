"""Hostile input on the sketchpad's sockets, the board `/ws/sketchpad/<slug>/` and the
gallery `/ws/sketchpad/` (sketchpad/README.md: the sketchpad protocol; docs/security.md), with Hypothesis.

On the board every frame gets an error frame with a documented code, or, when it
happens to be valid, its normal effect: what the README says the sender and the
other pages receive, and what is stored. An invalid frame stores nothing and
reaches no one. A valid stroke drawn after it still works. On the gallery every
frame gets read_only. Any query string leaves both as they are. Floods still end
in 4429.

The expected outcomes come from ``BoardModel``, the README's rules written again
here, not from boards.wire or boards.drawing: boards.wire gives only its records of
valid frames. What every site's fuzz tests share, and how to run them:
realtime_common.testing.fuzz.
"""

import itertools
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from asgiref.sync import sync_to_async
from hypothesis import assume, event, given
from hypothesis import strategies as st

from boards.consumers import BoardConsumer, GalleryConsumer
from boards.cursors import author_badge
from boards.models import Board, Stroke
from boards.services import board_clear, stroke_store
from boards.wire import Clear, Cursor, Draw, Undo
from realtime_common.consumers import REFUSAL_BURST
from realtime_common.testing import fuzz
from tests.conftest import CREATOR

pytestmark = fuzz.FUZZ_MARKS

BOARD = "/ws/sketchpad/friday/"
GALLERY = "/ws/sketchpad/"
# sketchpad/README.md, the sketchpad protocol's error codes, and the gallery's read_only.
BOARD_CODES = fuzz.SHARED_ERROR_CODES | {
    "unknown_type",
    "invalid_frame",
    "out_of_bounds",
    "too_many_points",
    "stroke_too_long",
    "too_many_strokes",
    "too_much_in_progress",
    "board_full",
    "not_your_board",
    "duplicate_stroke",
    "not_your_stroke",
    "not_stored",
}
GALLERY_CODES = fuzz.SHARED_ERROR_CODES | {"read_only"}
# README: the sketchpad's limits.
STROKE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
COLOR = re.compile(r"#[0-9a-fA-F]{6}")
MIN_WIDTH, MAX_WIDTH = 1, 64
FRAME_POINTS, STROKE_POINTS = 256, 10_000
STROKES_IN_PROGRESS, POINTS_IN_PROGRESS = 10, 20_000
BOARD_STROKES, BOARD_POINTS = 2_000, 40_000
DECIMALS = 4
# The probe: a stroke of its own drawn and undone after every fuzz frame; the erase
# its undo sends every page (the sender's included) marks the end of an example.
PROBE_PREFIX = "fuzz-probe-"

Command = Draw | Undo | Clear | Cursor


@dataclass
class InProgress:
    color: str
    width: int
    points: list[list[float]] = field(default_factory=list)


@dataclass(repr=False)
class BoardModel(fuzz.SiteModel):
    """The board as its creator's page sees it, kept by the test."""

    kind_field = "type"
    kinds = frozenset({"draw", "undo", "clear", "cursor"})
    author: str
    may_clear: bool
    stored: list[dict] = field(default_factory=list)  # finished strokes, in the order finished
    in_progress: dict[str, InProgress] = field(default_factory=dict)  # the fuzz page's
    version: int = 0  # strokes_version: raised by every store, undo and clear
    cursor_shown: bool = False  # the others show the fuzz page's cursor
    cursor_id: str | None = None  # its socket's, random: learnt from the first of its cursor frames the others get

    def __repr__(self) -> str:
        return f"BoardModel(stored={[s['stroke'] for s in self.stored]}, in_progress={list(self.in_progress)})"

    def content_expect(self, *, kind: str, content: dict) -> tuple[frozenset[str], Command | None]:
        if kind == "clear":
            return (frozenset(), Clear()) if self.may_clear else (frozenset({"not_your_board"}), None)
        if kind == "cursor":
            return self.cursor_expect(content)
        stroke = content.get("stroke")
        stroke_valid = isinstance(stroke, str) and STROKE_ID.fullmatch(stroke) is not None
        if kind == "undo":
            if not stroke_valid:
                return frozenset({"invalid_frame"}), None
            return (frozenset(), Undo(stroke)) if self.stored_find(stroke) else (frozenset({"not_your_stroke"}), None)
        # Every check the README lists that fails (which of them comes first is not documented).
        codes = set()
        color, width, points, done = (content.get(name) for name in ("color", "width", "points", "done"))
        if not stroke_valid:
            codes.add("invalid_frame")
        if not isinstance(color, str) or not COLOR.fullmatch(color):
            codes.add("invalid_frame")
        if type(width) is not int or not MIN_WIDTH <= width <= MAX_WIDTH:
            codes.add("invalid_frame")
        if not isinstance(done, bool):
            codes.add("invalid_frame")
        if not isinstance(points, list):
            codes.add("invalid_frame")
        else:
            if len(points) > FRAME_POINTS:
                codes.add("too_many_points")
            for point in points:
                if not (isinstance(point, list) and len(point) == 2 and all(map(fuzz.is_json_number, point))):
                    codes.add("invalid_frame")
                elif not all(0 <= coordinate <= 1 for coordinate in point):
                    codes.add("out_of_bounds")
        if codes:
            return frozenset(codes), None
        draw = Draw(stroke, color.lower(), width, [[round(c, DECIMALS) for c in point] for point in points], done)
        codes = self.draw_refusals(draw)
        return (frozenset(codes), None) if codes else (frozenset(), draw)

    def draw_refusals(self, draw: Draw) -> set[str]:
        """The README's limits on strokes, for a draw frame whose fields are valid."""
        codes = set()
        stroke = self.in_progress.get(draw.stroke)
        if stroke is None:
            if self.stored_find(draw.stroke):
                codes.add("duplicate_stroke")
            if len(self.stored) >= BOARD_STROKES or self.points_stored() >= BOARD_POINTS:
                codes.add("board_full")
            if len(self.in_progress) >= STROKES_IN_PROGRESS:
                codes.add("too_many_strokes")
            if not draw.points:
                codes.add("invalid_frame")
        elif (stroke.color, stroke.width) != (draw.color, draw.width):
            codes.add("invalid_frame")
        if (len(stroke.points) if stroke else 0) + len(draw.points) > STROKE_POINTS:
            codes.add("stroke_too_long")
        if self.points_in_progress() + len(draw.points) > POINTS_IN_PROGRESS:
            codes.add("too_much_in_progress")
        return codes

    def stored_find(self, stroke_id: str) -> dict | None:
        return next((s for s in self.stored if (s["author"], s["stroke"]) == (self.author, stroke_id)), None)

    def points_stored(self) -> int:
        return sum(len(stroke["points"]) for stroke in self.stored)

    def points_in_progress(self) -> int:
        return sum(len(stroke.points) for stroke in self.in_progress.values())

    def cursor_expect(self, content: dict) -> tuple[frozenset[str], Cursor | None]:
        if "x" not in content or "y" not in content:
            return frozenset({"invalid_frame"}), None
        x, y = content["x"], content["y"]
        if x is None and y is None:
            return frozenset(), Cursor(x=None, y=None)
        if not all(fuzz.is_json_number(value) and 0 <= value <= 1 for value in (x, y)):
            return frozenset({"out_of_bounds"}), None
        return frozenset(), Cursor(x=round(x, DECIMALS), y=round(y, DECIMALS))

    def cursor_seen(self, *, x: float | None, y: float | None) -> dict:
        """What the others get of the fuzz page's cursor. Its name and colour are the product's
        choice (tests/test_cursors.py); one page's cursor never meets the rate or the board's cap."""
        name, color = author_badge(author=self.author)
        return {
            "type": "cursor",
            "id": self.cursor_id,
            "author": self.author,
            "name": name,
            "color": color,
            "x": x,
            "y": y,
        }

    def apply(self, command: Command) -> tuple[list[dict], list[dict]]:
        """The command was valid: change the model; what the sender and the other pages receive."""
        if isinstance(command, Cursor):
            # A pointer that leaves the board says so once; a move always gets through.
            if command.x is None and not self.cursor_shown:
                return [], []
            self.cursor_shown = command.x is not None
            return [], [self.cursor_seen(x=command.x, y=command.y)]
        if isinstance(command, Clear):
            self.stored = []
            self.version += 1
            return [{"type": "clear"}], [{"type": "clear"}]
        if isinstance(command, Undo):
            self.stored.remove(self.stored_find(command.stroke))
            self.version += 1
            erase = {"type": "erase", "stroke": command.stroke, "author": self.author}
            return [erase], [erase]
        stroke = self.in_progress.setdefault(command.stroke, InProgress(command.color, command.width))
        stroke.points.extend(command.points)
        if command.done:
            del self.in_progress[command.stroke]
            self.stored.append(
                {
                    "stroke": command.stroke,
                    "author": self.author,
                    "color": stroke.color,
                    "width": stroke.width,
                    "points": stroke.points,
                }
            )
            self.version += 1
        draw = {
            "type": "draw",
            "stroke": command.stroke,
            "author": self.author,
            "color": command.color,
            "width": command.width,
            "points": command.points,
            "done": command.done,
        }
        return [], [draw]


@sync_to_async
def stored(board_id: int) -> tuple[list[dict], tuple]:
    """The board's finished strokes, in order, and its counts and version."""
    strokes = [
        {"stroke": stroke_id, "author": author, "color": color, "width": width, "points": points}
        for stroke_id, author, color, width, points in Stroke.objects.filter(board_id=board_id)
        .order_by("pk")
        .values_list("client_id", "author", "color", "width", "points")
    ]
    counts = Board.objects.filter(pk=board_id).values_list("strokes_count", "points_count", "strokes_version").get()
    return strokes, counts


def stored_expected(model: BoardModel) -> tuple[list[dict], tuple]:
    return model.stored, (len(model.stored), model.points_stored(), model.version)


def probe_frames(number: int) -> tuple[dict, dict]:
    """A stroke drawn and finished in one frame, then undone: normal answers on any board."""
    stroke = f"{PROBE_PREFIX}{number}"
    return (
        {"type": "draw", "stroke": stroke, "color": "#000000", "width": 1, "points": [[0.5, 0.5]], "done": True},
        {"type": "undo", "stroke": stroke},
    )


async def events_until(socket, last: dict) -> list[fuzz.Event]:
    """Everything the socket receives up to ``last``, which is not included."""
    got = []
    try:
        while (answer := await fuzz.event_next(socket)) != last:
            got.append(answer)
    except AssertionError as error:
        raise AssertionError(f"{error}, waiting for {last}; got {got}") from None
    return got


def in_any_order(answers: list[fuzz.Event]) -> list[fuzz.Event]:
    """The answers in one order whatever order they came in: to compare where the README sets none."""
    return sorted(answers, key=lambda answer: json.dumps(answer, sort_keys=True, default=repr))


@pytest.fixture
def board_model(board) -> BoardModel:
    return BoardModel(author=CREATOR, may_clear=True)


# Every example starts on a board with these strokes, the fuzz page's s1 and another
# author's s2, so that one frame can undo, reuse or try to undo another's stroke.
START_STROKES = [
    {"stroke": "s1", "author": CREATOR, "color": "#123456", "width": 3, "points": [[0.1, 0.2], [0.3, 0.4]]},
    {"stroke": "s2", "author": "someone-else", "color": "#abcdef", "width": 64, "points": [[1, 0]]},
]


def board_start(*, board_id: int) -> None:
    board_clear(board_id=board_id)
    for stroke in START_STROKES:
        stroke_store(
            board_id=board_id,
            author=stroke["author"],
            stroke_id=stroke["stroke"],
            color=stroke["color"],
            width=stroke["width"],
            points=stroke["points"],
        )


class BoardPages:
    """The fuzz page (the board's creator, who may clear it) and a page that watches
    what the others are sent. The watcher lives as long as nothing fails; the fuzz
    page and the board's strokes start afresh for every example (``restart``), and the
    page leaves as its example ends (``leave``), so an example's outcome depends on its
    frames alone and a failure replays as it happened."""

    def __init__(self, *, factory: fuzz.SocketFactory, cookie: tuple[bytes, bytes], model: BoardModel, board: Board):
        self.factory, self.cookie, self.model, self.board = factory, cookie, model, board
        self.fuzz_page = self.watcher = None

    async def restart(self) -> None:
        model = self.model
        if self.watcher is None:
            self.watcher = await self.factory.open(BOARD)
            snapshot = await fuzz.event_next(self.watcher)
            assert (snapshot["type"], snapshot["strokes"]) == ("snapshot", model.stored), snapshot
        if model.stored != START_STROKES:
            await sync_to_async(board_start)(board_id=self.board.pk)
            model.stored, model.version = (
                [dict(stroke) for stroke in START_STROKES],
                model.version + 1 + len(START_STROKES),
            )
        self.fuzz_page = await self.factory.open(BOARD, headers=[self.cookie])
        assert await fuzz.event_next(self.fuzz_page) == {"type": "snapshot", "you": CREATOR, "strokes": START_STROKES}

    async def leave(self) -> None:
        """Close the fuzz page: README, a page that goes away has its unfinished strokes erased on
        the others', and its cursor taken off. In no documented order: the consumer takes the cursor
        off first (so that it goes even while Redis is away), and a page applies each on its own."""
        model = self.model
        expected = [{"type": "erase", "stroke": stroke_id, "author": CREATOR} for stroke_id in model.in_progress]
        if model.cursor_shown:
            expected.append(model.cursor_seen(x=None, y=None))
        await self.factory.close(self.fuzz_page)
        self.fuzz_page = None
        # Exactly these, each once; anything more reaches the next example's checks of the watcher.
        got = [await fuzz.event_next(self.watcher) for _ in expected]
        assert in_any_order(got) == in_any_order(expected), f"the page left; the others got {got}"
        model.in_progress.clear()
        model.cursor_shown, model.cursor_id = False, None

    async def drop(self) -> None:
        for socket in (self.fuzz_page, self.watcher):
            if socket is not None:
                await self.factory.discard(socket)
        self.fuzz_page = self.watcher = None
        self.model.in_progress.clear()
        self.model.cursor_shown, self.model.cursor_id = False, None


@pytest.fixture
def board_pages(fuzz_sockets: fuzz.SocketFactory, board, creator_cookie, board_model, monkeypatch) -> BoardPages:
    fuzz.frame_rate_raise(monkeypatch, BoardConsumer)
    return BoardPages(factory=fuzz_sockets, cookie=creator_cookie, model=board_model, board=board)


coordinates = st.floats(min_value=0, max_value=1) | st.sampled_from(
    [0, 1, 0.0, 1.0, -0.0, 5e-324, 0.99995, 0.99996, 1e-5]
)
pairs = st.tuples(coordinates, coordinates).map(list)
off_board = st.floats(allow_nan=False) | st.sampled_from([-1e-9, 1 + 1e-12, 1.00005, 2, -1, 10**30, 1e308, -0.00001])
pairs_out_of_bounds = st.tuples(off_board, coordinates).map(list) | st.tuples(coordinates, off_board).map(list)
# Valid values of each field of a frame, and each field's near misses.
board_commands = fuzz.near_valid(
    {
        "type": st.sampled_from(["draw", "draw", "draw", "undo", "clear"]),
        # Mostly two ids, so that a few frames continue, finish, undo or reuse a stroke.
        "stroke": st.sampled_from(["s1", "s2"])
        | st.sampled_from(["s1", "s2"])
        | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        "color": st.sampled_from(["#ff0000", "#00FF00"]) | st.from_regex(r"#[0-9a-fA-F]{6}", fullmatch=True),
        "width": st.integers(min_value=MIN_WIDTH, max_value=MAX_WIDTH),
        # With a near miss a quarter of the time: points carry the most rules.
        "points": st.one_of(
            *[st.lists(pairs, min_size=1, max_size=12)] * 2,
            st.lists(pairs, min_size=FRAME_POINTS - 6, max_size=FRAME_POINTS),
            st.lists(pairs | pairs_out_of_bounds, min_size=1, max_size=12)
            | st.lists(pairs, min_size=FRAME_POINTS + 1, max_size=FRAME_POINTS + 6),
        ),
        "done": st.booleans(),
    },
    edges={
        "type": st.sampled_from(["Draw", "draw ", "erase", "snapshot", "draw\x00"]),
        "stroke": st.sampled_from(["a" * 65, "", "s 1", "ß", "s1\n", "s1\x00", "١"]),
        "color": st.sampled_from(["#fff", "#ff00000", "red", "#gggggg", "ff0000", "#ff0000\n", "#ＦＦ0000", "#١٢٣٤٥٦"]),
        "width": st.sampled_from([0, 65, -1, 1.0, 4.5, True, "4", 10**30, -(10**30)]),
        "points": st.lists(
            pairs
            | st.tuples(
                st.floats(allow_nan=False) | st.sampled_from([-1e-9, 1 + 1e-12, 2, -1, 10**30, 1e308]), coordinates
            ).map(list)
            | st.sampled_from(
                [[0.5], [0.5, 0.5, 0.5], [], "0.5,0.5", {"x": 0.5}, [True, 0.5], [None, 0.5], ["0.5", 0.5]]
            ),
            max_size=12,
        )
        | st.lists(pairs, min_size=FRAME_POINTS + 1, max_size=FRAME_POINTS + 6)
        | st.just([]),
        "done": st.sampled_from([0, 1, "true", None]),
    },
)
# Cursor frames: mostly on the board, sometimes both null, or one null (a near miss).
cursor_coordinates = st.one_of(coordinates, coordinates, coordinates, st.none())
off_board_values = off_board | st.sampled_from([True, False, "0.5", [0.5], {"x": 0.5}, math.nan, math.inf])
cursor_commands = fuzz.near_valid(
    {"type": st.just("cursor"), "x": cursor_coordinates, "y": cursor_coordinates},
    edges={"type": st.sampled_from(["Cursor", "cursor ", "pointer"]), "x": off_board_values, "y": off_board_values},
)
board_frames = fuzz.frames(near_valid_frames=board_commands | cursor_commands)
# Nested past any parser's limit, alone or where a frame's field goes.
deep_frames = fuzz.deep_json_frames(prefixes=['{"type":"draw","points":', '{"type":'])
probe_numbers = itertools.count()


@pytest.fixture
def frames_run(
    board_pages: BoardPages, board_model: BoardModel, board: Board, fuzz_tally: fuzz.Tally
) -> Callable[[list[fuzz.Frame]], Awaitable[None]]:
    """An example's frames from a fresh page on the board as every example starts it:
    each gets what the model allows, and the watcher, and what is stored, is what the
    model says."""

    async def run(frames_sent: list[fuzz.Frame]) -> None:
        fuzz_tally.consumer = "sketchpad-board"
        # The probe's strokes stay the probe's: their erase marks the end of a frame's answers.
        assume(not any(PROBE_PREFIX in (frame.text or "") for frame in frames_sent))
        try:
            await board_pages.restart()
            for frame in frames_sent:
                outcome = await frame_check(frame, board_pages, board_model)
                assert await stored(board.pk) == stored_expected(board_model), f"after {frame!r}"
                event(f"answer: {outcome}")
                fuzz_tally.count(outcome)
            await board_pages.leave()
        except BaseException:
            await board_pages.drop()
            raise

    return run


async def frame_check(frame: fuzz.Frame, pages: BoardPages, model: BoardModel) -> str:
    """One frame, then the probe; the outcome ("draw", "undo", "clear", "cursor" or the error code)."""
    expected = model.expect(frame)
    probe_draw, probe_undo = probe_frames(next(probe_numbers))
    for message in (frame, probe_draw, probe_undo):
        await fuzz.frame_send(pages.fuzz_page, message)
    probe_erase = {"type": "erase", "stroke": probe_draw["stroke"], "author": CREATOR}
    to_sender = await events_until(pages.fuzz_page, probe_erase)
    to_others = await events_until(pages.watcher, probe_erase)
    if model.cursor_id is None:
        model.cursor_id = next((frame["id"] for frame in to_others if frame.get("type") == "cursor"), None)
    if expected.command is not None and not (to_sender and to_sender[0].get("type") == "error"):
        outcome = type(expected.command).__name__.lower()
        sender_gets, others_get = model.apply(expected.command)
        assert to_sender == sender_gets, f"{frame!r}: the sender got {to_sender}, expected {sender_gets}"
    else:
        assert len(to_sender) == 1, f"{frame!r}: expected one error, got {to_sender} (expected {expected})"
        outcome = fuzz.error_check(to_sender[0], codes=expected.codes, documented=BOARD_CODES)
        others_get = []
    probe_stroke = {key: probe_draw[key] for key in ("type", "stroke", "color", "width", "points", "done")}
    assert to_others == [*others_get, {**probe_stroke, "author": CREATOR}], f"{frame!r}: the others got {to_others}"
    model.version += 2  # the probe's stroke, stored and undone
    return outcome


TestFrames = fuzz.frame_tests(
    frame_lists=st.lists(board_frames, min_size=1, max_size=4), deep_frames=deep_frames, max_examples=200
)


# A page that leaves a stroke unfinished and its cursor on the board. Its close sends the others
# the cursor's removal first (so that it goes even while Redis is away, BoardConsumer.disconnect),
# then the stroke's erase: an order the README leaves open. A case Hypothesis finds only now and then.
LEFT_MID_STROKE = [
    fuzz.Frame(text='{"type":"draw","stroke":"s3","color":"#ff0000","width":2,"points":[[0.5,0.5]],"done":false}'),
    fuzz.Frame(text='{"type":"cursor","x":0.25,"y":0.75}'),
]


@fuzz.fuzz_settings(max_examples=1)
@given(frames_sent=st.just(LEFT_MID_STROKE))
async def test_a_page_that_leaves_mid_stroke_is_checked_by_its_own_example(frames_sent, frames_run):
    """What the others get when the page closes, in any order, is checked by the example that
    closed it. Checked by the next example, in one order, it failed there (a cursor frame where an
    erase was expected), and Hypothesis found that failure not reproducible on its own."""
    await frames_run(frames_sent)
    await frames_run([fuzz.Frame(text='{"type":"clear"}')])


board_queries = fuzz.query_strings(
    {"since": fuzz.query_values(), "stroke": fuzz.query_values(), "author": fuzz.query_values()}
)


@fuzz.fuzz_settings(max_examples=60)
@given(query=board_queries)
async def test_any_query_string_on_the_board_changes_nothing(query, fuzz_sockets, board, fuzz_tally):
    fuzz_tally.consumer = "sketchpad-board"
    before = await stored(board.pk)
    socket = await fuzz_sockets.open(BOARD, query=query)
    snapshot = await fuzz.event_next(socket)
    assert (snapshot["type"], snapshot["strokes"]) == ("snapshot", before[0]), snapshot
    # Still alive: an undo of a stroke it does not have gets its normal answer.
    await fuzz.frame_send(socket, {"type": "undo", "stroke": "none"})
    fuzz.error_check(await fuzz.event_next(socket), codes={"not_your_stroke"}, documented=BOARD_CODES)
    await fuzz_sockets.close(socket)
    assert await stored(board.pk) == before
    fuzz_tally.count("snapshot")


# --------------------------------------------------------------------------- the gallery


@pytest.fixture
def gallery_page(fuzz_sockets: fuzz.SocketFactory, board, monkeypatch) -> fuzz.ReusedSocket:
    fuzz.frame_rate_raise(monkeypatch, GalleryConsumer)

    async def open_gallery():
        socket = await fuzz_sockets.open(GALLERY)
        assert (await fuzz.event_next(socket))["type"] == "thumbnails"
        return socket

    return fuzz.ReusedSocket(open_gallery, fuzz_sockets)


@fuzz.fuzz_settings(max_examples=250)
@given(frame=fuzz.frames())
async def test_any_frame_on_the_gallery_is_answered_read_only_and_changes_nothing(
    frame, gallery_page, board, fuzz_tally
):
    fuzz_tally.consumer = "sketchpad-gallery"
    await fuzz.read_only_check(
        frame=frame, reused=gallery_page, documented=GALLERY_CODES, stored=lambda: stored(board.pk), tally=fuzz_tally
    )


@fuzz.fuzz_settings(max_examples=60)
@given(query=board_queries)
async def test_any_query_string_on_the_gallery_lists_the_boards(query, fuzz_sockets, board, fuzz_tally):
    fuzz_tally.consumer = "sketchpad-gallery"
    socket = await fuzz_sockets.open(GALLERY, query=query)
    assert await fuzz.event_next(socket) == {"type": "thumbnails", "boards": {board.slug: None}}
    await fuzz.alive_check(socket, documented=GALLERY_CODES)
    await fuzz_sockets.close(socket)
    fuzz_tally.count("thumbnails")


# --------------------------------------------------------------------------- flooding


@pytest.fixture(params=["board", "gallery"])
def flooded(request: pytest.FixtureRequest, board: Board) -> fuzz.Flood:
    """Each socket, with its real limits: the board's (100 a second, bursts of 200), and
    the gallery's (20 a second, bursts of 40), which answers only read_only."""
    if request.param == "board":
        return fuzz.Flood(
            consumer="sketchpad-board",
            path=BOARD,
            greeting="snapshot",
            consumer_class=BoardConsumer,
            # It refills five times as fast as the gallery (100 frames a second): room for a second burst.
            refill=BoardConsumer.frame_burst + REFUSAL_BURST + 100,
            codes=BOARD_CODES,
        )
    return fuzz.Flood(
        consumer="sketchpad-gallery",
        path=GALLERY,
        greeting="thumbnails",
        consumer_class=GalleryConsumer,
        refill=60,
        codes=frozenset({"read_only", "rate_limited"}),
    )


TestFlood = fuzz.FloodTests
