"""Hostile input for the sites' sockets: Hypothesis strategies for frames and query
strings, and what the sites' fuzz tests (``<site>/tests/test_fuzz.py``) share to
drive a socket through many examples.

The properties every site checks, per input: the consumer survives it (a valid
frame sent after it still gets its normal answer), it gets a documented error
frame, a documented close, or, when the input happens to be valid, its normal
answer, and nothing stored changes unless the input was valid.

Why the helpers look as they do:

- A handshake through ``WebsocketCommunicator`` costs tens of milliseconds, so a
  test keeps one socket (``ReusedSocket``) for all its examples while the
  consumer keeps it open, and opens a new one only after a close or a crash: a
  crash then fails the example that caused it, not every later one, and
  Hypothesis shrinks it to the real culprit.
- Frames go in as raw ``websocket.receive`` messages, so empty text and empty
  binary frames are sent too (``WebsocketCommunicator.send_to`` refuses them).
- Query strings are bytes put in the scope, because a real client's request line
  may carry bytes that are not UTF-8, which a URL given to the communicator cannot.
- The guard on the frame rate would refuse most fuzz frames: ``frame_rate_raise``
  lifts it for the consumer classes under test; each site keeps a flooding test
  with the real limits.
- Hypothesis must be able to replay a failing example: the sites' tests bring
  the state an example depends on back to a fixed start before it (rooms joined,
  strokes stored), and ``SocketFactory.open`` reseeds the global random generator,
  which Hypothesis seeds alike for every example and from which the channel layers
  draw channel names.
- JSON nested past the parser's limit has its own strategy (``deep_json_frames``)
  and its own tests, so that a bug there hides no other.

What the sites' tests share beyond strategies: the tests that every socket gets
(``FloodTests``) and every socket that takes commands (``frame_tests``), which a
site's tests collect and feed through fixtures; ``SiteModel``, the frame of the
models in which a site writes its README's rules again; the check of a socket that
only sends (``read_only_check``); ``FUZZ_MARKS``. A site's ``test_fuzz.py`` holds
what is its own: paths, documented codes, its model, its near-valid frames and
what its sockets answer.

The module is a pytest plugin for its fixtures ``fuzz_sockets`` and ``fuzz_tally``:
``-p realtime_common.testing.fuzz`` in the suite's ``addopts``. Each test
prints a line ``fuzz-examples <consumer> <test id>: <count> (<outcome>=<count>, ...)``;
``--hypothesis-show-statistics`` adds Hypothesis' own (from a site's folder:
``../.venv/bin/pytest -q tests/test_fuzz.py --hypothesis-show-statistics``).
``FUZZ_SCALE=10`` runs ten times the examples, for a longer hunt than the suite's.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import secrets
import sys
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import quote, quote_plus

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.strategies import SearchStrategy

from realtime_common.consumers import REFUSAL_BURST, unstorable_text_in

# daphne's limit (realtime_common.serve, FRAME_MAX_BYTES): a bigger frame is
# closed with 1009 before any consumer sees it, so fuzz frames stay at or under it.
FRAME_BUDGET = 64 * 1024
# Generous: an answer normally comes within milliseconds, and a wait only runs
# out when something is wrong; the 2 shared cores of CI may be busy.
ANSWER_TIMEOUT = 5.0
# Close codes the sites' READMEs document for what a page sends: resync (the liveblog's
# since), flooding.
CLOSE_RESYNC, CLOSE_FLOODING = 4000, 4429
# The codes of every socket's shared layer (realtime_common.consumers).
SHARED_ERROR_CODES = frozenset({"bad_json", "bad_frame", "binary_frame", "rate_limited"})


# FUZZ_SCALE=10 runs ten times the examples: for a longer hunt than the suite's.
FUZZ_SCALE = int(os.environ.get("FUZZ_SCALE", "1"))


# For pytest-timeout (the sites' 60 s catch hangs): the examples of a fuzz test take
# seconds, but shrinking a failure to its simplest input may take minutes.
FUZZ_TIMEOUT = 300 * FUZZ_SCALE

# Every site's fuzz tests (``pytestmark = fuzz.FUZZ_MARKS``): the consumers reach the
# database from threads of their own, which see only what is committed; each test runs
# on both channel layers (the sites' ``channel_layer`` fixture), and may shrink.
FUZZ_MARKS = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("channel_layer"),
    pytest.mark.timeout(FUZZ_TIMEOUT),
]


def fuzz_settings(*, max_examples: int) -> settings:
    """What every fuzz test runs under.

    - No deadline: an example's time depends on the channel layer and the database.
    - ``function_scoped_fixture``: the fixtures (the socket above all) are shared by
      the examples on purpose.
    - The example database lives under ``.pytest_cache`` (ignored by git), so a
      failure found once is tried first on the next run.
    - Under CI the examples are derandomized: a red run is reproducible, and a
      green one does not turn red by chance; locally every run explores anew.
      (Derandomized runs keep no example database: Hypothesis refuses both.)
    """
    in_ci = os.environ.get("CI") == "true"
    return settings(
        max_examples=max_examples * FUZZ_SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None if in_ci else DirectoryBasedExampleDatabase(Path.cwd() / ".pytest_cache" / "hypothesis"),
        derandomize=in_ci,
        print_blob=True,
    )


# --------------------------------------------------------------------------- frames


def text_expression(text: str, *, unit_max: int = 8, run_min: int = 24) -> str:
    """A Python expression equal to ``text``, with runs of a short repeated unit written
    ``'[{' * 900``: a failing 60,000-character frame stays readable and copyable."""
    parts: list[str] = []
    literal_start = position = 0
    while position < len(text):
        best_unit, best_count = "", 0
        for size in range(1, unit_max + 1):
            unit = text[position : position + size]
            count = 1
            while text.startswith(unit, position + count * size):
                count += 1
            if len(unit) == size and count * size >= run_min and count * size > len(best_unit) * best_count:
                best_unit, best_count = unit, count
        if best_count:
            if literal_start < position:
                parts.append(repr(text[literal_start:position]))
            parts.append(f"{best_unit!r} * {best_count}")
            position += len(best_unit) * best_count
            literal_start = position
        else:
            position += 1
    if literal_start < len(text) or not parts:
        parts.append(repr(text[literal_start:]))
    return " + ".join(parts)


@dataclass(frozen=True)
class Frame:
    """One WebSocket message from a page: text, or binary (``data``)."""

    text: str | None = None
    data: bytes | None = None

    @property
    def size(self) -> int:
        """Its length on the wire, in bytes."""
        return len(self.text.encode()) if self.text is not None else len(self.data or b"")

    def message(self) -> dict:
        if self.text is not None:
            return {"type": "websocket.receive", "text": self.text}
        return {"type": "websocket.receive", "bytes": self.data or b""}

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        # Hypothesis prints failing examples with its pretty-printer: use the short form.
        printer.text(repr(self))

    def __repr__(self) -> str:
        if self.text is not None:
            return f"Frame(text={text_expression(self.text)})"
        data = self.data or b""
        return f"Frame(data={data!r})" if len(data) <= 200 else f"Frame(data=<{len(data)} bytes: {data[:60]!r}...>)"


def fits(frame: Frame) -> bool:
    return frame.size <= FRAME_BUDGET


# Unicode that a WebSocket text frame can carry: no lone surrogates (they have no UTF-8).
unicode_text = st.text
# Characters JSON can still carry as \uXXXX escapes: lone surrogates, which Python's
# parser turns into strings that cannot be encoded to UTF-8 (nor stored).
surrogates = st.characters(categories=["Cs"])


def json_strings(*, max_size: int = 20) -> SearchStrategy[str]:
    return st.text(st.characters() | surrogates, max_size=max_size)


def unencodable_text(*, max_size: int = 20) -> SearchStrategy[str]:
    """Text with at least one lone surrogate: a JSON string may carry it (as a \\uXXXX
    escape in valid UTF-8), but it has no UTF-8 of its own, so nothing can store it."""
    return st.builds(
        lambda head, surrogate, tail: head + surrogate + tail,
        json_strings(max_size=max_size),
        surrogates,
        json_strings(max_size=max_size),
    )


def has_surrogates(text: str) -> bool:
    return any(0xD800 <= ord(char) <= 0xDFFF for char in text)


@st.composite
def huge_text(draw, *, budget: int = FRAME_BUDGET, unit: SearchStrategy[str] | None = None) -> str:
    """Text of up to ``budget`` UTF-8 bytes: a short unit repeated, between two short
    texts. Repetition reaches sizes ``st.text`` never draws, and shrinks by count."""
    head, tail = draw(unicode_text(max_size=8)), draw(unicode_text(max_size=8))
    unit_text = draw(unit if unit is not None else unicode_text(min_size=1, max_size=4))
    room = budget - len(head.encode()) - len(tail.encode())
    unit_size = max(1, len(unit_text.encode()))
    count = draw(st.integers(min_value=0, max_value=max(0, room // unit_size)))
    return head + unit_text * count + tail


def text_frames() -> SearchStrategy[Frame]:
    """Any text: short, or huge up to the frame budget."""
    return st.builds(Frame, text=unicode_text(max_size=200) | huge_text())


def binary_frames() -> SearchStrategy[Frame]:
    """Any bytes, and bytes that would be valid frames had they come as text."""
    valid_as_text = st.sampled_from([b"{}", b'{"type": "clear"}', b'{"command": "join", "room": "lobby"}'])
    return st.builds(Frame, data=st.binary(max_size=200) | valid_as_text | huge_text().map(str.encode))


# Floats JSON can write (NaN and infinities are not JSON), from the extremes in.
extreme_floats = st.sampled_from(
    [
        sys.float_info.max,
        -sys.float_info.max,
        sys.float_info.min,
        -sys.float_info.min,
        5e-324,
        -0.0,
        1e-5,
        0.99995,
        1.00005,
    ]
)
# Huge ints, up to the 4,300 digits Python's parser takes (sys.get_int_max_str_digits).
huge_ints = st.builds(
    lambda sign, digits: sign * int(digits), st.sampled_from([1, -1]), st.text("0123456789", min_size=19, max_size=4300)
)
json_leaf_kinds: SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(allow_nan=False, allow_infinity=False),
    extreme_floats,
    json_strings(),
)
# Deferred only for its short name in Hypothesis' statistics, which quote the strategy.
json_leaves: SearchStrategy[Any] = st.deferred(lambda: json_leaf_kinds)


def json_values(*, max_leaves: int = 25) -> SearchStrategy[Any]:
    """Any JSON value: any shape, nesting and size (within the frame budget once written)."""
    return st.recursive(
        json_leaves,
        lambda children: (
            st.lists(children, max_size=6) | st.dictionaries(json_strings(max_size=10), children, max_size=6)
        ),
        max_leaves=max_leaves,
    )


class RawJson(str):
    """Text put into a frame as it is, where a JSON value goes: what Python's parser
    accepts but JSON is not (NaN, 1e400), or what it refuses (a 5,000-digit number)."""


raw_json_tokens = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "1e-400",
        "9" * 4301,  # one digit over Python's limit: a ValueError in the parser
        "-" + "1" * 5000,
        '"\\ud800"',  # a lone surrogate, valid JSON escape
        '"\\udfff\\ud800x"',
        '"\\u0000"',
        "1.0000000000000000000000001",
        "0.00000000000000000000000001",
        "123456789012345678901234567890",
    ]
).map(RawJson)


def json_write(value: Any, *, ascii_only: bool = True, indent: int | None = None) -> str:
    """``value`` as JSON text, with any RawJson in it put in verbatim."""
    raws: list[str] = []

    def swap(item: Any) -> Any:
        if isinstance(item, RawJson):
            raws.append(str(item))
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(item, dict):
            return {key: swap(child) for key, child in item.items()}
        if isinstance(item, list):
            return [swap(child) for child in item]
        return item

    text = json.dumps(swap(value), ensure_ascii=ascii_only, indent=indent)
    for number, raw in enumerate(raws):
        text = text.replace(f'"\\u0000raw{number}\\u0000"', raw).replace(f'"\x00raw{number}\x00"', raw)
    return text


@st.composite
def json_frames(draw, values: SearchStrategy[Any]) -> Frame:
    """A text frame holding one JSON value, written in one of the ways a client may."""
    value = draw(values)
    ascii_only = draw(st.booleans())
    indent = draw(st.sampled_from([None, None, 1]))
    text = json_write(value, ascii_only=True, indent=indent)
    if not ascii_only:
        raw = json_write(value, ascii_only=False, indent=indent)
        # Unescaped lone surrogates are no UTF-8: a browser could not send them.
        if not has_surrogates(raw):
            text = raw
    return Frame(text=text)


# Past Python's recursion limit (1,000) even once Hypothesis has raised it while a test
# runs (to the test's stack depth + 2,000): a failure then reproduces, as Hypothesis
# requires, whatever the stack depth at which the parser runs.
DEEP_MIN = 6_000


@st.composite
def deep_json_frames(draw, prefixes: Iterable[str] = ()) -> Frame:
    """JSON nested far deeper than any parser should follow (Python's stops at its
    recursion limit), under the frame budget; balanced or not, alone or where a
    field of a real frame goes (``prefixes``, each opening one object)."""
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"":[', "]}")]))
    prefix = draw(st.sampled_from(["", *prefixes]))
    core = draw(st.sampled_from(["1", "null", '"x"', "[]", "{}", ""]))
    room = (FRAME_BUDGET - len(prefix) - 10) // (len(opener) + len(closer))
    depth = draw(st.integers(min_value=DEEP_MIN, max_value=room))
    closers = depth if draw(st.booleans()) else draw(st.integers(min_value=0, max_value=depth))
    suffix = "}" if prefix else ""
    return Frame(text=prefix + opener * depth + core + closer * closers + suffix)


@st.composite
def odd_json_frames(draw) -> Frame:
    """Text that is almost JSON, or JSON that parsers disagree on."""
    body = draw(json_values(max_leaves=5))
    written = json_write(body)
    token = draw(raw_json_tokens)
    text = draw(
        st.sampled_from(
            [
                str(token),
                f'{{"a": {token}}}',
                f"[{token}]",
                "\ufeff" + written,  # a byte order mark
                written + draw(unicode_text(min_size=1, max_size=5)),  # trailing garbage
                written[: max(0, len(written) - 1)],  # cut short
                '{"a": 1, "a": 2}',
                " \t\r\n" + written + " \n",
                "{'single': 'quotes'}",
                "{a: 1}",
                "[1,]",
                "// comment\n{}",
            ]
        )
    )
    return Frame(text=text)


MISSING = object()


def near_valid(
    valid: Mapping[str, SearchStrategy[Any]],
    edges: Mapping[str, SearchStrategy[Any]] | None = None,
    *,
    extra: bool = True,
) -> SearchStrategy[dict]:
    """Real frames with a few fields broken: every field drawn from ``valid``, then some
    of them (none, often one or two) replaced by a value from ``edges`` (the field's
    near misses), any JSON value or a raw token, or left out; maybe stray fields too.
    Shrinking mends the broken fields: a failure shrinks to the most valid frame."""
    edges = edges or {}

    @st.composite
    def build(draw) -> dict:
        frame = {name: draw(strategy) for name, strategy in valid.items()}
        # How many fields to break: none a quarter of the time, mostly one or two.
        count = draw(st.sampled_from([0, 0, 1, 1, 1, 2, 2, 3, len(valid)]))
        for name in draw(st.permutations(list(valid)))[:count]:
            kinds = [
                *([edges[name]] if name in edges else []),
                json_values(max_leaves=8),
                raw_json_tokens,
                st.just(MISSING),
            ]
            value = draw(st.one_of(kinds))
            if value is MISSING:
                del frame[name]
            else:
                frame[name] = value
        if extra:
            strays = draw(st.dictionaries(json_strings(max_size=8), json_values(max_leaves=4), max_size=2))
            frame = {**{key: value for key, value in strays.items() if key not in valid}, **frame}
        return frame

    return build()


def frames(*, near_valid_frames: SearchStrategy[dict] | None = None) -> SearchStrategy[Frame]:
    """Every kind of hostile frame, under the frame budget, except JSON nested past the
    parser's limit (``deep_json_frames``), which each site fuzzes in a test of its
    own: a bug found there then hides none found here. Near-valid frames, when a site
    has any, are half of all: most bugs hide just past the valid."""
    kinds: list[SearchStrategy[Frame]] = [text_frames(), binary_frames(), json_frames(json_values()), odd_json_frames()]
    if near_valid_frames is not None:
        kinds += [json_frames(near_valid_frames)] * len(kinds)
    return st.one_of(kinds).filter(fits)


# --------------------------------------------------------------------------- what a frame should get


@dataclass(frozen=True)
class Parsed:
    """What the shared layer makes of a frame: the object handed to the site, or the
    error codes it may answer instead."""

    content: dict | None = None
    codes: frozenset[str] = frozenset()


def nesting_depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, list | dict)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


# Nesting deeper than this may be refused as not JSON: a server need not follow it.
PARSER_DEPTH_LIMIT = 100


def frame_expect(frame: Frame) -> Parsed:
    """The documented outcome of the shared checks (docs/security.md; each site's README: error codes), worked out
    independently of the product: binary_frame, bad_json, bad_frame, or the object."""
    if frame.text is None:
        return Parsed(codes=frozenset({"binary_frame"}))
    try:
        strict = json.loads(frame.text, parse_constant=reject_constant)
    except ValueError:
        strict = MISSING
    except RecursionError:
        return Parsed(codes=frozenset({"bad_json"}))
    try:
        lenient = json.loads(frame.text)
    except (ValueError, RecursionError):
        return Parsed(codes=frozenset({"bad_json"}))
    # NaN and Infinity are not JSON, but Python's parser takes them: the site may
    # refuse the frame as not JSON, or treat it as what Python made of it. Likewise
    # nesting a server need not follow, and escapes of lone surrogates, which are no
    # Unicode, or of NUL: nothing downstream could store or encode them (Postgres, NUL).
    refusable = strict is MISSING or nesting_depth(lenient) > PARSER_DEPTH_LIMIT or unstorable_text_in(lenient)
    not_json = {"bad_json"} if refusable else set()
    if not isinstance(lenient, dict):
        return Parsed(codes=frozenset({"bad_frame", *not_json}))
    return Parsed(content=lenient, codes=frozenset(not_json))


def reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def is_json_number(value: Any) -> bool:
    """A number a page may send: JSON's int or finite float, not a bool."""
    return type(value) is int or (type(value) is float and math.isfinite(value))


@dataclass(frozen=True)
class Expected:
    """What a frame may get: an error with one of ``codes``, or the normal answer to
    ``command``, the valid command it is."""

    codes: frozenset[str] = frozenset()
    command: Any = None


class SiteModel(ABC):
    """A site's protocol as its README states it, and what one page's socket has done:
    written again by the site's tests, never asked of the product, because a test that
    asked the product what to expect would agree with any bug.

    Each site's README names a frame's command in one field (``kind_field``) and refuses
    any but its ``kinds`` with ``unknown_<field>`` before it checks anything else."""

    kind_field: ClassVar[str]
    kinds: ClassVar[frozenset[str]]

    def expect(self, frame: Frame) -> Expected:
        parsed = frame_expect(frame)
        if parsed.content is None:
            return Expected(codes=parsed.codes)
        kind = parsed.content.get(self.kind_field)
        if not isinstance(kind, str) or kind not in self.kinds:
            return Expected(codes=parsed.codes | {f"unknown_{self.kind_field}"})
        codes, command = self.content_expect(kind=kind, content=parsed.content)
        return Expected(codes=parsed.codes | codes, command=command)

    @abstractmethod
    def content_expect(self, *, kind: str, content: dict) -> tuple[frozenset[str], Any]:
        """The site's checks of the object a frame holds, of one of its ``kinds``: the codes
        of every refusal that applies (the README does not say which comes first), else
        none and the command."""

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        # Hypothesis prints the fixtures of a failing example with its pretty-printer, which
        # would list every field: a model's own repr gives the gist.
        printer.text(repr(self))


# --------------------------------------------------------------------------- query strings

# The ways a query string's parts reach the server: as typed, percent-escaped, or as
# raw bytes a hand-written client may put in its request line.
ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "plain": lambda part: part.encode(),
    "quoted": lambda part: quote(part, safe="").encode(),
    "quoted_plus": lambda part: quote_plus(part).encode(),
    "latin1": lambda part: part.encode("latin-1", errors="replace"),
    "escaped_ascii": lambda part: "".join(f"%{ord(char):02X}" if char.isascii() else char for char in part).encode(),
}

# Values that look like numbers and are not quite, or are and should not be trusted.
number_like = st.sampled_from(
    [
        "",
        "0",
        "00",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1\n",
        "0x10",
        "1e3",
        "1_000",
        "1.0",
        "١٢",  # Arabic-Indic digits: str.isdigit() says yes, int() takes them
        "１２",  # fullwidth digits
        "²",
        "9" * 18,
        "9" * 19,
        "1" * 5000,
        "%",
        "%zz",
        "%00",
        "%E2%80%8B",
        "%31",
        "&",
        "=",
    ]
)
digit_strings = st.text("0123456789", max_size=40) | st.integers(min_value=0, max_value=10**40).map(str)


def query_values(extra: SearchStrategy[str] | None = None) -> SearchStrategy[str]:
    """Values for a query key: digits of any length, near-numbers, any text."""
    kinds = [digit_strings, number_like, unicode_text(max_size=30), huge_text(budget=2000)]
    if extra is not None:
        kinds.append(extra)
    return st.one_of(kinds)


@st.composite
def query_strings(draw, keys: Mapping[str, SearchStrategy[str]]) -> bytes:
    """A query string: the given keys (repeated, or missing) and stray ones, each
    part in one of ENCODINGS, with stray separators; as the bytes of the request line."""
    key_names = st.sampled_from(list(keys)) | unicode_text(max_size=10)
    pairs = draw(st.lists(st.tuples(key_names, st.booleans()), max_size=5))
    parts: list[bytes] = []
    for key, with_value in pairs:
        encoded_key = ENCODINGS[draw(st.sampled_from(list(ENCODINGS)))](key)
        if not with_value:
            parts.append(encoded_key)
            continue
        value = draw(keys[key] if key in keys else query_values())
        encoded_value = ENCODINGS[draw(st.sampled_from(list(ENCODINGS)))](value)
        parts.append(encoded_key + b"=" + encoded_value)
    separator = draw(st.sampled_from([b"&", b"&", b"&&", b";"]))
    return separator.join(parts) + draw(st.sampled_from([b"", b"", b"&", b"#frag", b"\xff"]))


# --------------------------------------------------------------------------- sockets

Sockets = TypeVar("Sockets", WebsocketCommunicator, tuple)


@dataclass(frozen=True)
class Closed:
    code: int | None


Event = dict | Closed


async def output_next(socket: WebsocketCommunicator, *, timeout: float = ANSWER_TIMEOUT) -> dict:
    """The consumer's next ASGI message. Unlike ``receive_output``, which waits out its
    timeout when the consumer dies, a crash is raised as soon as it happens, with its
    own traceback: a crashing example costs milliseconds, and shrinking stays quick."""
    if socket.future.done():
        socket.future.result()  # raises the crash
    getter = asyncio.ensure_future(socket.output_queue.get())
    done, _ = await asyncio.wait({getter, socket.future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    if socket.future.done():
        socket.future.result()  # raises the crash
        raise AssertionError("the consumer returned without closing the socket")
    raise AssertionError(f"no answer within {timeout} s")


async def event_next(socket: WebsocketCommunicator, *, timeout: float = ANSWER_TIMEOUT) -> Event:
    """The next thing the consumer sends: a frame (decoded) or its close. A crash of
    the consumer is raised here, with its own traceback."""
    message = await output_next(socket, timeout=timeout)
    if message["type"] == "websocket.close":
        return Closed(message.get("code"))
    assert message["type"] == "websocket.send" and isinstance(message.get("text"), str), message
    return json.loads(message["text"])


async def frame_send(socket: WebsocketCommunicator, frame: Frame | dict) -> None:
    """Send a Frame as it is, or a dict as a page would (JSON text)."""
    message = frame.message() if isinstance(frame, Frame) else {"type": "websocket.receive", "text": json.dumps(frame)}
    await socket.send_input(message)


def error_check(event: Event, *, codes: Iterable[str], documented: frozenset[str]) -> str:
    """The event is an error frame of the documented shape whose code is one of ``codes``; its code."""
    allowed = set(codes)
    assert isinstance(event, dict), f"expected an error frame with a code in {sorted(allowed)}, got {event}"
    assert event.get("type") == "error", f"expected an error frame with a code in {sorted(allowed)}, got {event}"
    # client_id: the page's id of the command refused, when it gave one (ClientError).
    assert set(event) - {"client_id"} == {"type", "code", "detail"} and isinstance(event["detail"], str), event
    assert event["code"] in documented, f"undocumented error code {event['code']!r}"
    assert event["code"] in allowed, f"expected a code in {sorted(allowed)}, got {event}"
    return event["code"]


class SocketFactory:
    """Opens sockets to the site's ASGI application as its pages do (its Origin),
    with any query string, and closes the survivors after the test."""

    def __init__(self, *, application, origin: str):
        self.application = application
        self.origin = origin
        self.opened: list[WebsocketCommunicator] = []

    async def open(
        self, path: str, *, query: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> WebsocketCommunicator:
        """The socket, its handshake accepted: no input of the fuzz tests is a reason to
        refuse one (a resync or a flood is a close after it)."""
        # Hypothesis seeds the global random generator alike for every example, and the
        # channel layers draw channel names from it: a socket opened in one example
        # would get the name of one still open from an earlier one, and the two would
        # share (and steal) each other's messages. A seed from the OS keeps them apart.
        random.seed(secrets.randbits(64))
        socket = WebsocketCommunicator(self.application, path, headers=[(b"origin", self.origin.encode()), *headers])
        # The application starts on the first message, so the scope can still change.
        socket.scope["query_string"] = query
        self.opened.append(socket)
        await socket.send_input({"type": "websocket.connect"})
        message = await output_next(socket)
        assert message["type"] == "websocket.accept", message
        return socket

    async def close(self, socket: WebsocketCommunicator) -> None:
        """Disconnect, unless the consumer ended already (closed, or crashed: the test reported that)."""
        if socket in self.opened:
            self.opened.remove(socket)
        if socket._future is not None and socket._future.done():
            return
        await socket.send_input({"type": "websocket.disconnect", "code": 1000})
        await socket.wait(ANSWER_TIMEOUT)

    async def discard(self, socket: WebsocketCommunicator) -> None:
        """Close it after a failure, whatever became of the consumer: a crash was the
        failure of the example that caused it already."""
        try:
            await self.close(socket)
        except Exception:  # noqa: BLE001 - reported by the example that failed
            pass

    async def close_all(self) -> None:
        for socket in list(self.opened):
            await self.discard(socket)


class ReusedSocket(Generic[Sockets]):
    """The sockets shared by a test's examples (one, or a tuple of them that live and
    die together: what ``open_sockets`` returns), opened again only after an example
    failed, the consumer closed one, or the test asks (``drop``): so a failure
    belongs to the example that caused it, not to every later one."""

    def __init__(self, open_sockets: Callable[[], Awaitable[Sockets]], factory: SocketFactory):
        self.open_sockets = open_sockets
        self.factory = factory
        self.sockets: Sockets | None = None
        self.opened = 0

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Sockets]:
        if self.sockets is None:
            self.sockets = await self.open_sockets()
            self.opened += 1
        try:
            yield self.sockets
        except BaseException:
            await self.drop()
            raise

    async def drop(self) -> None:
        """Close the sockets: the next example opens new ones."""
        sockets, self.sockets = self.sockets, None
        for socket in sockets if isinstance(sockets, tuple) else [sockets] if sockets is not None else []:
            await self.factory.discard(socket)


async def flood(socket: WebsocketCommunicator, frames: list[Frame], *, count: int) -> list[Event]:
    """Send ``count`` frames (``frames`` over and over) without waiting for answers,
    as a flooding page does; everything the consumer sent, up to its close."""
    for number in range(count):
        await frame_send(socket, frames[number % len(frames)])
    events: list[Event] = []
    while not events or not isinstance(events[-1], Closed):
        events.append(await event_next(socket))
    return events


@dataclass(frozen=True)
class Flood:
    """A site's socket, as ``FloodTests`` floods it: the site's fixture ``flooded``."""

    consumer: str  # its name in the fuzz-examples line
    path: str
    consumer_class: type
    # Frames past the burst and the refusals: room for what refills while the flood runs.
    refill: int
    # The error codes a flood may get: the socket's documented ones, or fewer.
    codes: frozenset[str]
    headers: tuple[tuple[bytes, bytes], ...] = ()
    # The type of the frame the socket sends first, if any.
    greeting: str | None = None


class FloodTests:
    """The flooding test every socket gets, for a site's ``test_fuzz.py`` to collect
    (``TestFlood = fuzz.FloodTests``) with a fixture ``flooded``, the socket (a Flood)."""

    @fuzz_settings(max_examples=4)
    @given(flood_frames=st.lists(frames(), min_size=1, max_size=4))
    async def test_a_flood_of_any_frames_is_refused_then_closed_with_4429(
        self, flood_frames: list[Frame], flooded: Flood, fuzz_sockets: SocketFactory, fuzz_tally: Tally
    ) -> None:
        """A page that sends without waiting, against the real frame rate (which the other
        fuzz tests lift): refused with rate_limited, then closed with 4429, and what still
        arrives is ignored."""
        fuzz_tally.consumer = flooded.consumer
        socket = await fuzz_sockets.open(flooded.path, headers=flooded.headers)
        if flooded.greeting is not None:
            assert (await event_next(socket))["type"] == flooded.greeting
        count = flooded.consumer_class.frame_burst + REFUSAL_BURST + flooded.refill
        events = await flood(socket, flood_frames, count=count)
        codes = Counter(
            answer["code"] for answer in events if isinstance(answer, dict) and answer.get("type") == "error"
        )
        assert set(codes) <= flooded.codes, codes
        assert codes["rate_limited"] >= 1, codes
        assert events[-1] == Closed(CLOSE_FLOODING), events[-5:]
        await frame_send(socket, flood_frames[0])
        assert await socket.receive_nothing(timeout=0.2), "a frame after the flooding close was answered"
        await fuzz_sockets.close(socket)
        fuzz_tally.count("closed-4429")


def frame_tests(
    *, frame_lists: SearchStrategy[list[Frame]], deep_frames: SearchStrategy[Frame], max_examples: int
) -> type:
    """The tests of a socket that takes commands, for a site's ``test_fuzz.py`` to
    collect (``TestFrames = fuzz.frame_tests(...)``): any frames, and, in a test of its
    own so that a bug there hides no other, JSON nested past the parser's limit. The
    site's fixture ``frames_run`` sends an example's frames and checks what each gets
    against the site's model."""

    class FrameTests:
        @fuzz_settings(max_examples=max_examples)
        @given(frames_sent=frame_lists)
        async def test_any_frame_gets_a_documented_answer_and_changes_nothing_unless_valid(
            self, frames_sent: list[Frame], frames_run: Callable[[list[Frame]], Awaitable[None]]
        ) -> None:
            await frames_run(frames_sent)

        @fuzz_settings(max_examples=40)
        @given(frame=deep_frames)
        async def test_json_nested_past_the_parser_s_limit_gets_bad_json_and_changes_nothing(
            self, frame: Frame, frames_run: Callable[[list[Frame]], Awaitable[None]]
        ) -> None:
            await frames_run([frame])

    return FrameTests


# What a page might send a socket that only sends: a frame that gets read_only, as any does
# but the heartbeat ({"type": "ping"}, answered with a pong on every socket).
PROBE = {"type": "hello"}


async def alive_check(socket: WebsocketCommunicator, *, documented: frozenset[str]) -> None:
    """A socket that only sends is still alive: a page's next frame gets its normal
    answer, read_only."""
    await frame_send(socket, PROBE)
    error_check(await event_next(socket), codes={"read_only"}, documented=documented)


async def read_only_check(
    *,
    frame: Frame,
    reused: ReusedSocket,
    documented: frozenset[str],
    stored: Callable[[], Awaitable[Any]],
    tally: Tally,
) -> None:
    """On a socket that only sends: the frame gets read_only, the page's next frame too,
    and nothing ``stored`` returns changes."""
    before = await stored()
    async with reused.use() as socket:
        await frame_send(socket, frame)
        code = error_check(await event_next(socket), codes={"read_only"}, documented=documented)
        await alive_check(socket, documented=documented)
    assert await stored() == before
    event(f"answer: {code}")
    tally.count(code)


def frame_rate_raise(monkeypatch: pytest.MonkeyPatch, *consumer_classes: type) -> None:
    """Lift the frame rate guard (FrameGuard) of these consumers for fuzzing, which
    sends far faster than any page."""
    for consumer_class in consumer_classes:
        monkeypatch.setattr(consumer_class, "frame_rate", 10**9)
        monkeypatch.setattr(consumer_class, "frame_burst", 10**9)


@dataclass
class Tally:
    """How many examples a fuzz test ran, and what they got, for the report line."""

    consumer: str = "?"
    examples: int = 0
    outcomes: Counter = field(default_factory=Counter)

    def count(self, outcome: str) -> None:
        self.examples += 1
        self.outcomes[outcome] += 1


@pytest.fixture
async def fuzz_sockets(site_origin):
    # Imported now, not at the top: the application needs Django set up.
    from config.asgi import application

    factory = SocketFactory(application=application, origin=site_origin)
    yield factory
    await factory.close_all()


@pytest.fixture
def fuzz_tally(request):
    """Counts the examples of a test; prints one line per test, ``fuzz-examples ...``,
    to the terminal (under -q too), to collect with grep."""
    tally = Tally()
    yield tally
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None or not tally.examples:
        return
    outcomes = ", ".join(f"{name}={count}" for name, count in sorted(tally.outcomes.items()))
    # Past the capture, as pytest's own progress is: the line shows without -s.
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(f"fuzz-examples {tally.consumer} {request.node.nodeid}: {tally.examples} ({outcomes})")
