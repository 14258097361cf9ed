"""Hostile input on the sketchpad's sockets, the board `/ws/sketchpad/<slug>/` and the
gallery `/ws/sketchpad/` (README: the sketchpad protocol, Security), with Hypothesis.

On the board every frame gets an error frame with a documented code, or, when it
happens to be valid, its normal effect: what the README says the sender and the
other pages receive, and what is stored. An invalid frame stores nothing and
reaches no one. A valid stroke drawn after it still works. On the gallery every
frame gets read_only. Any query string leaves both as they are. Floods still end
in 4429.

The expected outcomes come from ``BoardModel``, the README's rules written again
here, not from boards.wire or boards.drawing: a test that asked the product what
to expect would agree with any bug.

Run: ``../.venv/bin/pytest -q tests/test_fuzz.py --hypothesis-show-statistics``;
each test also prints a ``fuzz-examples`` line with its count.
"""

import itertools
import re
from dataclasses import dataclass, field

import pytest
from asgiref.sync import sync_to_async
from hypothesis import assume, event, given
from hypothesis import strategies as st

from boards.consumers import BoardConsumer, GalleryConsumer
from boards.models import Board, Stroke
from boards.services import board_clear, stroke_store
from realtime_common.consumers import REFUSAL_BURST
from realtime_common.testing.fuzz import (
    FUZZ_TIMEOUT,
    SHARED_ERROR_CODES,
    Event,
    Frame,
    ReusedSocket,
    SocketFactory,
    Tally,
    deep_json_frames,
    error_check,
    event_next,
    flood,
    flood_check,
    frame_expect,
    frame_rate_raise,
    frame_send,
    frames,
    fuzz_settings,
    is_json_number,
    near_valid,
    query_strings,
    query_values,
)
from tests.conftest import CREATOR

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("channel_layer"),
    pytest.mark.timeout(FUZZ_TIMEOUT),
]

BOARD = "/ws/sketchpad/friday/"
GALLERY = "/ws/sketchpad/"
# README, the sketchpad protocol's error codes, and the gallery's read_only.
BOARD_CODES = SHARED_ERROR_CODES | {
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
GALLERY_CODES = SHARED_ERROR_CODES | {"read_only"}
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


@dataclass(frozen=True)
class Draw:
    stroke: str
    color: str
    width: int
    points: list[list[float]]
    done: bool


@dataclass(frozen=True)
class Undo:
    stroke: str


@dataclass(frozen=True)
class Clear:
    pass


Command = Draw | Undo | Clear


@dataclass
class Expected:
    """What a frame may get: an error with one of ``codes``, or the normal effect of ``command``."""

    codes: frozenset[str] = frozenset()
    command: Command | None = None


@dataclass
class InProgress:
    color: str
    width: int
    points: list[list[float]] = field(default_factory=list)


@dataclass(repr=False)
class BoardModel:
    """The board as its creator's page sees it, kept by the test."""

    author: str
    may_clear: bool
    stored: list[dict] = field(default_factory=list)  # finished strokes, in the order finished
    in_progress: dict[str, InProgress] = field(default_factory=dict)  # the fuzz page's
    version: int = 0  # strokes_version: raised by every store, undo and clear

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis' pretty-printer would list every field

    def __repr__(self) -> str:
        # Hypothesis prints the fixtures of a failing example: the gist, not every point.
        return f"BoardModel(stored={[s['stroke'] for s in self.stored]}, in_progress={list(self.in_progress)})"

    def expect(self, frame: Frame) -> Expected:
        parsed = frame_expect(frame)
        if parsed.content is None:
            return Expected(codes=parsed.codes)
        codes, command = self.frame_expect(parsed.content)
        return Expected(codes=parsed.codes | codes, command=command)

    def frame_expect(self, content: dict) -> tuple[frozenset[str], Command | None]:
        kind = content.get("type")
        if not isinstance(kind, str) or kind not in ("draw", "undo", "clear"):
            return frozenset({"unknown_type"}), None
        if kind == "clear":
            return (frozenset(), Clear()) if self.may_clear else (frozenset({"not_your_board"}), None)
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
                if not (isinstance(point, list) and len(point) == 2 and all(map(is_json_number, point))):
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

    def apply(self, command: Command) -> tuple[list[dict], list[dict]]:
        """The command was valid: change the model; what the sender and the other pages receive."""
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


async def events_until(socket, last: dict) -> list[Event]:
    """Everything the socket receives up to ``last``, which is not included."""
    got = []
    try:
        while (answer := await event_next(socket)) != last:
            got.append(answer)
    except AssertionError as error:
        raise AssertionError(f"{error}, waiting for {last}; got {got}") from None
    return got


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
    page and the board's strokes start afresh for every example (``restart``), so an
    example's outcome depends on its frames alone and a failure replays as it happened."""

    def __init__(self, *, factory: SocketFactory, cookie: tuple[bytes, bytes], model: BoardModel, board: Board):
        self.factory, self.cookie, self.model, self.board = factory, cookie, model, board
        self.fuzz_page = self.watcher = None

    async def restart(self) -> None:
        model = self.model
        if self.watcher is None:
            self.watcher, accepted = await self.factory.open(BOARD)
            assert accepted
            snapshot = await event_next(self.watcher)
            assert (snapshot["type"], snapshot["strokes"]) == ("snapshot", model.stored), snapshot
        if self.fuzz_page is not None:
            # README: a page that goes away has its unfinished strokes erased on the others'.
            abandoned = list(model.in_progress)
            await self.factory.close(self.fuzz_page)
            for stroke_id in abandoned:
                assert await event_next(self.watcher) == {"type": "erase", "stroke": stroke_id, "author": CREATOR}
        model.in_progress.clear()
        if model.stored != START_STROKES:
            await sync_to_async(board_start)(board_id=self.board.pk)
            model.stored, model.version = (
                [dict(stroke) for stroke in START_STROKES],
                model.version + 1 + len(START_STROKES),
            )
        self.fuzz_page, accepted = await self.factory.open(BOARD, headers=[self.cookie])
        assert accepted
        assert await event_next(self.fuzz_page) == {"type": "snapshot", "you": CREATOR, "strokes": START_STROKES}

    async def drop(self) -> None:
        for socket in (self.fuzz_page, self.watcher):
            if socket is not None:
                try:
                    await self.factory.close(socket)
                except Exception:  # noqa: BLE001 - it crashed: the example reports that
                    pass
        self.fuzz_page = self.watcher = None
        self.model.in_progress.clear()


@pytest.fixture
def board_pages(fuzz_sockets: SocketFactory, board, creator_cookie, board_model, monkeypatch) -> BoardPages:
    frame_rate_raise(monkeypatch, BoardConsumer)
    return BoardPages(factory=fuzz_sockets, cookie=creator_cookie, model=board_model, board=board)


coordinates = st.floats(min_value=0, max_value=1) | st.sampled_from(
    [0, 1, 0.0, 1.0, -0.0, 5e-324, 0.99995, 0.99996, 1e-5]
)
pairs = st.tuples(coordinates, coordinates).map(list)
off_board = st.floats(allow_nan=False) | st.sampled_from([-1e-9, 1 + 1e-12, 1.00005, 2, -1, 10**30, 1e308, -0.00001])
pairs_out_of_bounds = st.tuples(off_board, coordinates).map(list) | st.tuples(coordinates, off_board).map(list)
# Valid values of each field of a frame, and each field's near misses.
board_commands = near_valid(
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
board_frames = frames(near_valid_frames=board_commands)
# Nested past any parser's limit, alone or where a frame's field goes.
deep_frames = deep_json_frames(prefixes=['{"type":"draw","points":', '{"type":'])
probe_numbers = itertools.count()


async def frames_check(
    frames_sent: list[Frame], pages: BoardPages, model: BoardModel, board: Board, tally: Tally
) -> None:
    """From a fresh page on an empty board, each frame gets what the model allows, and
    the watcher, and what is stored, is what the model says."""
    tally.consumer = "sketchpad-board"
    # The probe's strokes stay the probe's: their erase marks the end of a frame's answers.
    assume(not any(PROBE_PREFIX in (frame.text or "") for frame in frames_sent))
    try:
        await pages.restart()
        for frame in frames_sent:
            outcome = await frame_check(frame, pages, model)
            assert await stored(board.pk) == stored_expected(model), f"after {frame!r}"
            event(f"answer: {outcome}")
            tally.count(outcome)
    except BaseException:
        await pages.drop()
        raise


async def frame_check(frame: Frame, pages: BoardPages, model: BoardModel) -> str:
    """One frame, then the probe; the outcome ("draw", "undo", "clear" or the error code)."""
    expected = model.expect(frame)
    probe_draw, probe_undo = probe_frames(next(probe_numbers))
    for message in (frame, probe_draw, probe_undo):
        await frame_send(pages.fuzz_page, message)
    probe_erase = {"type": "erase", "stroke": probe_draw["stroke"], "author": CREATOR}
    to_sender = await events_until(pages.fuzz_page, probe_erase)
    to_others = await events_until(pages.watcher, probe_erase)
    if expected.command is not None and not (to_sender and to_sender[0].get("type") == "error"):
        outcome = type(expected.command).__name__.lower()
        sender_gets, others_get = model.apply(expected.command)
        assert to_sender == sender_gets, f"{frame!r}: the sender got {to_sender}, expected {sender_gets}"
    else:
        assert len(to_sender) == 1, f"{frame!r}: expected one error, got {to_sender} (expected {expected})"
        outcome = error_check(to_sender[0], codes=expected.codes, documented=BOARD_CODES)
        others_get = []
    probe_stroke = {key: probe_draw[key] for key in ("type", "stroke", "color", "width", "points", "done")}
    assert to_others == [*others_get, {**probe_stroke, "author": CREATOR}], f"{frame!r}: the others got {to_others}"
    model.version += 2  # the probe's stroke, stored and undone
    return outcome


@fuzz_settings(max_examples=200)
@given(frames_sent=st.lists(board_frames, min_size=1, max_size=4))
async def test_any_frame_gets_a_documented_answer_and_changes_nothing_unless_valid(
    frames_sent, board_pages, board_model, board, fuzz_tally
):
    await frames_check(frames_sent, board_pages, board_model, board, fuzz_tally)


@fuzz_settings(max_examples=40)
@given(frame=deep_frames)
async def test_json_nested_past_the_parser_s_limit_gets_bad_json_and_changes_nothing(
    frame, board_pages, board_model, board, fuzz_tally
):
    await frames_check([frame], board_pages, board_model, board, fuzz_tally)


board_queries = query_strings({"since": query_values(), "stroke": query_values(), "author": query_values()})


@fuzz_settings(max_examples=60)
@given(query=board_queries)
async def test_any_query_string_on_the_board_changes_nothing(query, fuzz_sockets, board, fuzz_tally):
    fuzz_tally.consumer = "sketchpad-board"
    before = await stored(board.pk)
    socket, accepted = await fuzz_sockets.open(BOARD, query=query)
    assert accepted
    snapshot = await event_next(socket)
    assert (snapshot["type"], snapshot["strokes"]) == ("snapshot", before[0]), snapshot
    # Still alive: an undo of a stroke it does not have gets its normal answer.
    await frame_send(socket, {"type": "undo", "stroke": "none"})
    error_check(await event_next(socket), codes={"not_your_stroke"}, documented=BOARD_CODES)
    await fuzz_sockets.close(socket)
    assert await stored(board.pk) == before
    fuzz_tally.count("snapshot")


@fuzz_settings(max_examples=4)
@given(flood_frames=st.lists(frames(), min_size=1, max_size=4))
async def test_a_flood_on_the_board_is_refused_then_closed_with_4429(flood_frames, fuzz_sockets, board, fuzz_tally):
    """With the real limits (100 a second, bursts of 200): what fuzzing lifts."""
    fuzz_tally.consumer = "sketchpad-board"
    socket, accepted = await fuzz_sockets.open(BOARD)
    assert accepted
    assert (await event_next(socket))["type"] == "snapshot"
    # Past the burst and the refusals, with room for what refills while it runs.
    events = await flood(socket, flood_frames, count=2 * (BoardConsumer.frame_burst + REFUSAL_BURST) + 100)
    await flood_check(socket, events, documented=BOARD_CODES, late=flood_frames[0])
    await fuzz_sockets.close(socket)
    fuzz_tally.count("closed-4429")


# --------------------------------------------------------------------------- the gallery


@pytest.fixture
def gallery_page(fuzz_sockets: SocketFactory, board, monkeypatch) -> ReusedSocket:
    frame_rate_raise(monkeypatch, GalleryConsumer)

    async def open_gallery():
        socket, accepted = await fuzz_sockets.open(GALLERY)
        assert accepted
        assert (await event_next(socket))["type"] == "thumbnails"
        return socket

    return ReusedSocket(open_gallery, fuzz_sockets)


@fuzz_settings(max_examples=250)
@given(frame=frames())
async def test_any_frame_on_the_gallery_is_answered_read_only_and_changes_nothing(
    frame, gallery_page, board, fuzz_tally
):
    fuzz_tally.consumer = "sketchpad-gallery"
    before = await stored(board.pk)
    async with gallery_page.use() as socket:
        await frame_send(socket, frame)
        code = error_check(await event_next(socket), codes={"read_only"}, documented=GALLERY_CODES)
        # Still alive: the next frame gets its normal answer.
        await frame_send(socket, {"type": "ping"})
        error_check(await event_next(socket), codes={"read_only"}, documented=GALLERY_CODES)
    assert await stored(board.pk) == before
    event(f"answer: {code}")
    fuzz_tally.count(code)


@fuzz_settings(max_examples=60)
@given(query=board_queries)
async def test_any_query_string_on_the_gallery_lists_the_boards(query, fuzz_sockets, board, fuzz_tally):
    fuzz_tally.consumer = "sketchpad-gallery"
    socket, accepted = await fuzz_sockets.open(GALLERY, query=query)
    assert accepted
    assert await event_next(socket) == {"type": "thumbnails", "boards": {board.slug: None}}
    await frame_send(socket, {"type": "ping"})
    error_check(await event_next(socket), codes={"read_only"}, documented=GALLERY_CODES)
    await fuzz_sockets.close(socket)
    fuzz_tally.count("thumbnails")


@fuzz_settings(max_examples=4)
@given(flood_frames=st.lists(frames(), min_size=1, max_size=4))
async def test_a_flood_on_the_gallery_is_refused_then_closed_with_4429(flood_frames, fuzz_sockets, board, fuzz_tally):
    """With the real limits (20 a second, bursts of 40): what fuzzing lifts."""
    fuzz_tally.consumer = "sketchpad-gallery"
    socket, accepted = await fuzz_sockets.open(GALLERY)
    assert accepted
    assert (await event_next(socket))["type"] == "thumbnails"
    events = await flood(socket, flood_frames, count=GalleryConsumer.frame_burst + REFUSAL_BURST + 60)
    codes = await flood_check(socket, events, documented=GALLERY_CODES, late=flood_frames[0])
    assert set(codes) <= {"read_only", "rate_limited"}, codes
    await fuzz_sockets.close(socket)
    fuzz_tally.count("closed-4429")
