"""Hostile input on the liveblog page's socket, `/ws/liveblog/<slug>/` (README: the
liveblog protocol, Security), with Hypothesis: every frame, whatever it holds, is
answered read_only; every query string catches up from a valid ``since`` or
resyncs (4000); nothing stored changes; a flood still ends in 4429.

Run: ``../.venv/bin/pytest -q tests/test_fuzz.py --hypothesis-show-statistics``;
each test also prints a ``fuzz-examples`` line with its count.
"""

import re
from urllib.parse import parse_qsl

import pytest
from asgiref.sync import sync_to_async
from hypothesis import event, given
from hypothesis import strategies as st

from blog.consumers import LiveblogConsumer
from blog.models import Liveblog, Post
from blog.services import post_create
from realtime_common.consumers import REFUSAL_BURST
from realtime_common.models import Stream, StreamEvent
from realtime_common.testing.fuzz import (
    CLOSE_RESYNC,
    FUZZ_TIMEOUT,
    SHARED_ERROR_CODES,
    Closed,
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
    frame_rate_raise,
    frame_send,
    frames,
    fuzz_settings,
    query_strings,
    query_values,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("channel_layer"),
    pytest.mark.timeout(FUZZ_TIMEOUT),
]

PAGE = "/ws/liveblog/launch/"
# README, Security and the liveblog protocol: the codes this socket may answer with.
DOCUMENTED = SHARED_ERROR_CODES | {"read_only"}
# What a page might send (the socket only sends, so its normal answer is read_only).
PROBE = {"type": "ping"}
# README: since is 1 to 18 ASCII digits.
SINCE = re.compile(r"[0-9]{1,18}")
POSTS = 3


@sync_to_async
def stored() -> tuple:
    """Everything the socket could change if it wrongly wrote: posts, streams, events."""
    return (
        list(Post.objects.order_by("pk").values_list("pk", "liveblog_id", "body", "updated")),
        list(Stream.objects.order_by("pk").values_list("name", "last_seq")),
        list(StreamEvent.objects.order_by("pk").values_list("stream_id", "seq", "frame")),
    )


@pytest.fixture
def posted(liveblog: Liveblog) -> list[dict]:
    """Three posts, events 1 to 3: what a page catches up on; their frames, by seq - 1."""
    for number in range(POSTS):
        post_create(liveblog=liveblog, body=f"Post {number}")
    return list(StreamEvent.objects.order_by("seq").values_list("frame", flat=True))


@pytest.fixture
def page_socket(fuzz_sockets: SocketFactory, liveblog: Liveblog, monkeypatch: pytest.MonkeyPatch) -> ReusedSocket:
    """One page's socket for all the examples of a test, with the frame rate lifted."""
    frame_rate_raise(monkeypatch, LiveblogConsumer)

    async def open_page():
        socket, accepted = await fuzz_sockets.open(PAGE)
        assert accepted
        return socket

    return ReusedSocket(open_page, fuzz_sockets)


async def read_only_check(frame: Frame, page_socket: ReusedSocket, tally: Tally) -> None:
    """The frame gets read_only, the page's next frame too, and nothing stored changes."""
    tally.consumer = "liveblog-page"
    before = await stored()
    async with page_socket.use() as socket:
        await frame_send(socket, frame)
        code = error_check(await event_next(socket), codes={"read_only"}, documented=DOCUMENTED)
        # Still alive: the next frame gets its normal answer.
        await frame_send(socket, PROBE)
        error_check(await event_next(socket), codes={"read_only"}, documented=DOCUMENTED)
    assert await stored() == before
    event(f"answer: {code}")
    tally.count(code)


@fuzz_settings(max_examples=400)
@given(frame=frames())
async def test_any_frame_is_answered_read_only_and_changes_nothing(frame, page_socket, posted, fuzz_tally):
    await read_only_check(frame, page_socket, fuzz_tally)


@fuzz_settings(max_examples=40)
@given(frame=deep_json_frames())
async def test_json_nested_past_the_parser_s_limit_is_answered_read_only(frame, page_socket, posted, fuzz_tally):
    await read_only_check(frame, page_socket, fuzz_tally)


def since_outcomes(query: bytes, *, frames_by_seq: list[dict]) -> list[list[Event]]:
    """What a page may get on connecting with this query string, before its socket is
    live (README: catch-up and resync); more than one when ``since`` is repeated,
    because which one counts is not documented: the first or the last."""
    values = [value for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if key == "since"]
    if not values:
        return [[]]  # live from now
    outcomes = []
    for value in {values[0], values[-1]}:
        if SINCE.fullmatch(value) and int(value) <= len(frames_by_seq):
            outcomes.append(frames_by_seq[int(value) :])
        else:  # not a seq, or ahead of the stream's
            outcomes.append([{"type": "resync"}, Closed(CLOSE_RESYNC)])
    return outcomes


since_values = query_values(extra=st.integers(min_value=0, max_value=POSTS + 1).map(str))


@fuzz_settings(max_examples=150)
@given(query=query_strings({"since": since_values}))
async def test_any_query_string_catches_up_or_resyncs_and_changes_nothing(query, fuzz_sockets, posted, fuzz_tally):
    fuzz_tally.consumer = "liveblog-page"
    before = await stored()
    socket, accepted = await fuzz_sockets.open(PAGE, query=query)
    assert accepted  # a query string never refuses the handshake: resync is a close after it
    # The probe's read_only marks the end of the catch-up (the connect handler sends
    # it all before any frame is handled), without waiting out a timeout.
    await frame_send(socket, PROBE)
    got: list[Event] = []
    while True:
        answer = await event_next(socket)
        if isinstance(answer, dict) and answer.get("type") == "error":
            error_check(answer, codes={"read_only"}, documented=DOCUMENTED)
            break
        got.append(answer)
        if isinstance(answer, Closed):
            break
    expected = since_outcomes(query, frames_by_seq=posted)
    assert got in expected, f"query {query!r}: got {got}, expected one of {expected}"
    await fuzz_sockets.close(socket)
    assert await stored() == before
    outcome = "resync" if got and got[-1] == Closed(CLOSE_RESYNC) else f"caught-up-{len(got)}"
    event(f"outcome: {outcome}")
    fuzz_tally.count(outcome)


@fuzz_settings(max_examples=4)
@given(flood_frames=st.lists(frames(), min_size=1, max_size=4))
async def test_a_flood_of_any_frames_is_refused_then_closed_with_4429(flood_frames, fuzz_sockets, liveblog, fuzz_tally):
    """With the real limits (20 a second, bursts of 40): what fuzzing lifts."""
    fuzz_tally.consumer = "liveblog-page"
    socket, accepted = await fuzz_sockets.open(PAGE)
    assert accepted
    # Past the burst and the refusals, with room for what refills while it runs.
    events = await flood(socket, flood_frames, count=LiveblogConsumer.frame_burst + REFUSAL_BURST + 60)
    codes = await flood_check(socket, events, documented=DOCUMENTED, late=flood_frames[0])
    assert set(codes) <= {"read_only", "rate_limited"}, codes
    await fuzz_sockets.close(socket)
    fuzz_tally.count("closed-4429")
