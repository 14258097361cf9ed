"""Hostile input on the liveblog page's socket, `/ws/liveblog/<slug>/` (liveblog/README.md: the
liveblog protocol, Security), with Hypothesis: every frame, whatever it holds, is
answered read_only; every query string catches up from a valid ``since`` or
resyncs (4000); nothing stored changes; a flood still ends in 4429. What every
site's fuzz tests share, and how to run them: realtime_common.testing.fuzz.
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
from realtime_common.models import Stream, StreamEvent
from realtime_common.testing import fuzz

pytestmark = fuzz.FUZZ_MARKS

PAGE = "/ws/liveblog/launch/"
# docs/security.md and liveblog/README.md (the liveblog protocol): the codes this socket may answer with.
DOCUMENTED = fuzz.SHARED_ERROR_CODES | {"read_only"}
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
def page_socket(
    fuzz_sockets: fuzz.SocketFactory, liveblog: Liveblog, monkeypatch: pytest.MonkeyPatch
) -> fuzz.ReusedSocket:
    """One page's socket for all the examples of a test, with the frame rate lifted."""
    fuzz.frame_rate_raise(monkeypatch, LiveblogConsumer)
    return fuzz.ReusedSocket(lambda: fuzz_sockets.open(PAGE), fuzz_sockets)


@fuzz.fuzz_settings(max_examples=400)
@given(frame=fuzz.frames())
async def test_any_frame_is_answered_read_only_and_changes_nothing(frame, page_socket, posted, fuzz_tally):
    fuzz_tally.consumer = "liveblog-page"
    await fuzz.read_only_check(frame=frame, reused=page_socket, documented=DOCUMENTED, stored=stored, tally=fuzz_tally)


@fuzz.fuzz_settings(max_examples=40)
@given(frame=fuzz.deep_json_frames())
async def test_json_nested_past_the_parser_s_limit_is_answered_read_only(frame, page_socket, posted, fuzz_tally):
    fuzz_tally.consumer = "liveblog-page"
    await fuzz.read_only_check(frame=frame, reused=page_socket, documented=DOCUMENTED, stored=stored, tally=fuzz_tally)


def since_outcomes(query: bytes, *, frames_by_seq: list[dict]) -> list[list[fuzz.Event]]:
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
            outcomes.append([{"type": "resync"}, fuzz.Closed(fuzz.CLOSE_RESYNC)])
    return outcomes


since_values = fuzz.query_values(extra=st.integers(min_value=0, max_value=POSTS + 1).map(str))


@fuzz.fuzz_settings(max_examples=150)
@given(query=fuzz.query_strings({"since": since_values}))
async def test_any_query_string_catches_up_or_resyncs_and_changes_nothing(query, fuzz_sockets, posted, fuzz_tally):
    fuzz_tally.consumer = "liveblog-page"
    before = await stored()
    socket = await fuzz_sockets.open(PAGE, query=query)
    # The probe's read_only marks the end of the catch-up (the connect handler sends
    # it all before any frame is handled), without waiting out a timeout.
    await fuzz.frame_send(socket, fuzz.PROBE)
    got: list[fuzz.Event] = []
    while True:
        answer = await fuzz.event_next(socket)
        if isinstance(answer, dict) and answer.get("type") == "error":
            fuzz.error_check(answer, codes={"read_only"}, documented=DOCUMENTED)
            break
        got.append(answer)
        if isinstance(answer, fuzz.Closed):
            break
    expected = since_outcomes(query, frames_by_seq=posted)
    assert got in expected, f"query {query!r}: got {got}, expected one of {expected}"
    await fuzz_sockets.close(socket)
    assert await stored() == before
    outcome = "resync" if got and got[-1] == fuzz.Closed(fuzz.CLOSE_RESYNC) else f"caught-up-{len(got)}"
    event(f"outcome: {outcome}")
    fuzz_tally.count(outcome)


@pytest.fixture
def flooded(liveblog: Liveblog) -> fuzz.Flood:
    """The page's socket, with its real limits (20 a second, bursts of 40)."""
    return fuzz.Flood(
        consumer="liveblog-page",
        path=PAGE,
        consumer_class=LiveblogConsumer,
        refill=60,
        codes=frozenset({"read_only", "rate_limited"}),
    )


TestFlood = fuzz.FloodTests
