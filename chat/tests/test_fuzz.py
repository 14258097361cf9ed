"""Hostile input on the chat socket, `/ws/chat/`, logged in (chat/README.md: the chat
protocol, Security), with Hypothesis. Every frame gets an error frame with a
documented code, or, when it happens to be a valid command, its normal answer;
after it a valid command still gets its own; nothing is stored or changed in the
session unless the command was valid. Every query string (``since`` above all)
gets the socket back into the session's rooms with a history the README allows.
A flood still ends in 4429.

The expected answers come from ``ChatModel``, the README's rules written again
here, not from rooms.wire, which gives only its record of a valid command. What
every site's fuzz tests share, and how to run them: realtime_common.testing.fuzz.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore
from hypothesis import assume, event, given
from hypothesis import strategies as st

from realtime_common.testing import fuzz
from rooms import presence
from rooms.consumers import ChatConsumer
from rooms.models import Message, Room
from rooms.selectors import SESSION_ROOMS
from rooms.services import message_create
from rooms.wire import Command
from tests.helpers import Browser

pytestmark = fuzz.FUZZ_MARKS

CHAT = "/ws/chat/"
# chat/README.md, the chat protocol's error codes.
DOCUMENTED = fuzz.SHARED_ERROR_CODES | {
    "unknown_command",
    "invalid_room",
    "invalid_since",
    "invalid_text",
    "invalid_client_id",
    "invalid_after",
    "room_not_found",
    "forbidden",
    "not_joined",
}
# A room of its own for the probe, the valid command sent after every fuzz frame.
PROBE_ROOM = "fuzz-probe"
PROBE = {"command": "join", "room": PROBE_ROOM}
# README: a slug is ASCII letters, digits, - and _, at most 50; a seq 0 to 10**18 - 1;
# a text 1 to 2000 characters once trimmed; history at most 50 events.
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,50}")
SEQ_LIMIT = 10**18
TEXT_MAX = 2000
HISTORY = 50
SINCE_ITEM = re.compile(r"(?P<room>[-a-zA-Z0-9_]{1,50}):(?P<seq>[0-9]{1,18})")
SINCE_ITEMS_MAX = 50
# README: a send's client_id, optional (null: none), 1 to 64 ASCII letters, digits, - and _.
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# README: a members command's after, optional (null or "": from the first), a string of at most 150.
AFTER_MAX = 150


@dataclass(repr=False)
class ChatModel(fuzz.SiteModel):
    """The chat as one logged-in, non-staff socket sees it, kept by the test."""

    kind_field = "command"
    kinds = frozenset({"join", "leave", "send", "typing", "members"})
    username: str
    rooms: dict[str, Room]  # every room, by slug
    session: list[str] = field(default_factory=list)  # the session's rooms, in the order joined
    joined: set[str] = field(default_factory=set)  # this socket's rooms
    events: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)  # by room: (seq, user, text)
    messages: list[tuple[str, str, str]] = field(default_factory=list)  # stored, in order: (room, user, text)
    client_ids: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # stored: id → (room, text, seq)

    def __repr__(self) -> str:
        return f"ChatModel(session={self.session}, joined={sorted(self.joined)}, messages={len(self.messages)})"

    def content_expect(self, *, kind: str, content: dict) -> tuple[frozenset[str], Command | None]:
        codes = set()
        room = content.get("room")
        if not isinstance(room, str) or not SLUG.fullmatch(room):
            codes.add("invalid_room")
        since = content.get("since")  # null: no since (the README calls it optional)
        if kind == "join" and since is not None and (type(since) is not int or not 0 <= since < SEQ_LIMIT):
            codes.add("invalid_since")
        text = content.get("text")
        text = text.strip() if isinstance(text, str) else ""
        if kind == "send" and not 1 <= len(text) <= TEXT_MAX:
            codes.add("invalid_text")
        client_id = content.get("client_id") if kind == "send" else None
        if client_id is not None and not (isinstance(client_id, str) and CLIENT_ID.fullmatch(client_id)):
            codes.add("invalid_client_id")
        after = content.get("after") if kind == "members" else None
        if after is not None and not (isinstance(after, str) and len(after) <= AFTER_MAX):
            codes.add("invalid_after")
        if kind == "send" and fuzz.has_surrogates(text):
            # Not documented: a JSON escape of a lone surrogate is no character that can
            # be stored or sent on. Refused, as not text or not JSON, is what can be right.
            codes |= {"invalid_text", "bad_json"}
        if codes:
            return frozenset(codes), None
        if kind == "join":
            if room not in self.rooms:
                return frozenset({"room_not_found"}), None
            if self.rooms[room].staff_only:
                return frozenset({"forbidden"}), None
            return frozenset(), Command(kind, room, since=since)
        if room not in self.joined:
            return frozenset({"not_joined"}), None
        if client_id in self.client_ids and self.client_ids[client_id][:2] != (room, text):
            return frozenset({"invalid_client_id"}), None  # the id names another message
        return frozenset(), Command(
            kind, room, text=text if kind == "send" else "", client_id=client_id, after=after or ""
        )

    def members_check(self, answer: fuzz.Event, *, command: Command) -> None:
        """README: the names after ``after``, in code point order; alice is alone in the room."""
        listed = [self.username] if self.username > command.after else []
        assert answer == {
            "type": "members",
            "room": command.room,
            "after": command.after,
            "members": listed,
            "count": 1,
            "more": False,
        }, answer

    def history(self, room: str, since: int | None) -> tuple[list[tuple[int, str, str]], bool]:
        """README: every event after ``since``, else (none, too many, or ahead) the newest 50, and more."""
        events = self.events.get(room, [])
        if since is not None and since <= len(events) and len(events) - since <= HISTORY:
            return events[since:], False
        newest = events[-HISTORY:]
        return newest, since is not None or (bool(newest) and newest[0][0] > 1)

    def joined_check(self, answer: fuzz.Event, *, room: str, since: int | None) -> None:
        assert isinstance(answer, dict) and answer.get("type") == "joined", answer
        assert (answer["room"], answer["title"]) == (room, self.rooms[room].title), answer
        assert self.username in answer["members"], answer
        history = [(event["seq"], event["user"], event["text"]) for event in answer["history"]]
        assert (history, answer["more"]) == self.history(room, since), answer

    def apply(self, command: Command) -> None:
        """The command was answered normally: what it changed."""
        if command.name in ("join", "leave"):
            self.session = [slug for slug in self.session if slug != command.room]
        if command.name == "join":
            self.session.append(command.room)
            self.joined.add(command.room)
        elif command.name == "leave":
            self.joined.discard(command.room)
        elif command.name == "send" and command.client_id not in self.client_ids:  # else a resend: nothing new
            room_events = self.events.setdefault(command.room, [])
            room_events.append((len(room_events) + 1, self.username, command.text))
            self.messages.append((command.room, self.username, command.text))
            if command.client_id is not None:
                self.client_ids[command.client_id] = (command.room, command.text, len(room_events))

    def send_seq(self, command: Command) -> int:
        """The seq of the message a send is answered with: its own, when a resend, else the room's next."""
        if command.client_id in self.client_ids:
            return self.client_ids[command.client_id][2]
        return len(self.events.get(command.room, [])) + 1


@sync_to_async
def stored(session_key: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The messages (room, user, text), and the rooms kept in the session."""
    messages = list(Message.objects.order_by("pk").values_list("room__slug", "user__username", "text"))
    return messages, SessionStore(session_key).get(SESSION_ROOMS, [])


def stored_expected(model: ChatModel) -> tuple[list[tuple[str, str, str]], list[str]]:
    return model.messages, model.session


def is_presence(answer: fuzz.Event) -> bool:
    # Presence frames come whenever the user's first socket enters a room or its last leaves.
    return isinstance(answer, dict) and answer.get("type") == "presence"


async def answer_next(socket) -> fuzz.Event:
    """The next frame or close that is not presence."""
    while is_presence(answer := await fuzz.event_next(socket)):
        pass
    return answer


@pytest.fixture
def fuzz_limits(settings, monkeypatch):
    """Fuzzing sends far more than a page: lift the per-user limits on messages and
    joins, the per-socket ones on typing and pages of members (the frame rate is lifted per consumer
    class by the tests that need it), and the wait that batches presence changes."""
    settings.CHAT_RATE_LIMIT_MESSAGES = 10**9
    settings.CHAT_JOIN_LIMIT = 10**9
    settings.CHAT_TYPING_BURST = 10**9
    monkeypatch.setattr(presence, "MEMBERS_PAGES_BURST", 10**9)
    # A join waits for its room's presence batch, up to this long after the last one;
    # the probe joins after every frame, so the batching would cost 50 ms a frame.
    settings.CHAT_PRESENCE_BATCH = 0


@pytest.fixture
def probe_room(chat_rooms) -> dict[str, Room]:
    return {**chat_rooms, PROBE_ROOM: Room.objects.create(slug=PROBE_ROOM, title="Fuzz probe")}


@pytest.fixture
async def alice(logged_in, users) -> Browser:
    return await logged_in(users["alice"])


@pytest.fixture
def chat_model(alice, probe_room) -> ChatModel:
    return ChatModel(username="alice", rooms=probe_room)


@pytest.fixture
def chat_socket(
    fuzz_sockets: fuzz.SocketFactory, alice: Browser, chat_model: ChatModel, fuzz_limits, monkeypatch
) -> fuzz.ReusedSocket:
    """alice's tab, for all the examples of a test, with the frame rate lifted."""
    fuzz.frame_rate_raise(monkeypatch, ChatConsumer)

    async def open_tab():
        socket = await fuzz_sockets.open(CHAT, headers=[alice.cookie])
        # Opened again after a crash: back in the session's rooms, in order (README: Handshake).
        for room in chat_model.session:
            chat_model.joined_check(await answer_next(socket), room=room, since=None)
        chat_model.joined = set(chat_model.session)
        return socket

    return fuzz.ReusedSocket(open_tab, fuzz_sockets)


# Valid values of each field of a command, and each field's near misses.
chat_commands = fuzz.near_valid(
    {
        "command": st.sampled_from(["join", "leave", "send", "send", "typing", "members"]),
        "room": st.sampled_from(["lobby", "random"]),
        "since": st.integers(min_value=0, max_value=60) | st.integers(min_value=0, max_value=SEQ_LIMIT - 1),
        "text": fuzz.unicode_text(min_size=1, max_size=50).filter(str.strip)
        | fuzz.huge_text(budget=TEXT_MAX, unit=st.sampled_from("xé€😀")),
        # A few ids over and over, so that resends (of the same text or not) come up too.
        "client_id": st.sampled_from(["m-1", "m-2"]) | st.from_regex(CLIENT_ID, fullmatch=True),
        # Around alice, the one name in the room, and any other.
        "after": st.sampled_from(["", "alic", "alice", "alice0", "z"]) | fuzz.unicode_text(max_size=AFTER_MAX),
    },
    edges={
        "command": st.sampled_from(["JOIN", "join ", "", "delete", "leave\n"]),
        "room": st.sampled_from(
            [
                "staff-room",
                "no-such-room",
                "LOBBY",
                "lobby\n",
                " lobby",
                "a" * 50,
                "a" * 51,
                "",
                "lóbby",
                "lobby/x",
                "lobby%00",
            ]
        )
        | st.from_regex(r"[-a-zA-Z0-9_]{1,60}", fullmatch=True),
        "since": st.sampled_from([SEQ_LIMIT - 1, SEQ_LIMIT, -1, True, False, 1.0, 0.5, "1", None, 10**30, -(10**30)]),
        "client_id": st.sampled_from(["", "x" * 64, "x" * 65, "m 1", "m-1\n", "é", "m/1", None, 1, True, ["m-1"]]),
        "after": st.sampled_from(["x" * AFTER_MAX, "x" * (AFTER_MAX + 1), None, 0, True, ["alice"], "\x00", "\ud800"]),
        "text": st.sampled_from(
            [
                "",
                " ",
                "\n\t",
                " " * 3000,
                "x" * TEXT_MAX,
                "x" * (TEXT_MAX + 1),
                " " + "y" * TEXT_MAX + " ",
                "\u3000",
                "\x00",
                "\ud800",
                "a\udc00b",
                "\u200b",
            ]
        )
        | fuzz.huge_text(budget=9000),
    },
)
chat_frames = fuzz.frames(near_valid_frames=chat_commands)
# Nested past any parser's limit, alone or where a command's field goes.
deep_frames = fuzz.deep_json_frames(prefixes=['{"command":"send","room":"lobby","text":', '{"command":'])


# Every example starts in these rooms, whatever the one before did: an example's
# outcome then depends on its frames alone, and a failure replays as it happened.
START_ROOMS = ["lobby", "random"]


async def rooms_restore(socket, model: ChatModel) -> None:
    for room in START_ROOMS:
        if room not in model.joined:
            await fuzz.frame_send(socket, {"command": "join", "room": room})
            model.joined_check(await answer_next(socket), room=room, since=None)
            model.apply(Command("join", room))


@pytest.fixture
def frames_run(
    chat_socket: fuzz.ReusedSocket, chat_model: ChatModel, alice: Browser, fuzz_tally: fuzz.Tally
) -> Callable[[list[fuzz.Frame]], Awaitable[None]]:
    """An example's frames on alice's tab: each gets what the model allows, the probe
    after it its joined frame, and what is stored (messages, the session's rooms) is
    what the model says."""

    async def run(frames_sent: list[fuzz.Frame]) -> None:
        fuzz_tally.consumer = "chat"
        # The probe's room stays the probe's: its joined frame marks the end of a frame's answers.
        assume(not any(PROBE_ROOM in (frame.text or "") for frame in frames_sent))
        async with chat_socket.use() as socket:
            await rooms_restore(socket, chat_model)
            for frame in frames_sent:
                outcome = await frame_check(frame, socket, chat_model)
                assert await stored(alice.session_key) == stored_expected(chat_model), f"after {frame!r}"
                event(f"answer: {outcome}")
                fuzz_tally.count(outcome)

    return run


async def frame_check(frame: fuzz.Frame, socket, model: ChatModel) -> str:
    """One frame, then the probe; the outcome ("join", "leave", "send" or the error code)."""
    expected = model.expect(frame)
    await fuzz.frame_send(socket, frame)
    await fuzz.frame_send(socket, PROBE)
    direct: list[fuzz.Event] = []  # the answers to the fuzz frame
    messages: list[dict] = []  # message frames: a send's answer comes through the room's group
    while True:
        answer = await answer_next(socket)
        if isinstance(answer, dict) and answer.get("type") == "message":
            messages.append(answer)
        elif isinstance(answer, dict) and answer.get("type") == "joined" and answer.get("room") == PROBE_ROOM:
            break
        else:
            direct.append(answer)
    outcome = outcome_check(model, expected, direct)
    if outcome == "send":
        # The message may come after the probe's answer: its group message races the probe.
        if not messages:
            messages.append(await answer_next(socket))
        command = expected.command
        assert len(messages) == 1, messages
        assert {key: messages[0].get(key) for key in ("type", "room", "seq", "user", "text", "client_id")} == {
            "type": "message",
            "room": command.room,
            "seq": model.send_seq(command),
            "user": model.username,
            "text": command.text,
            "client_id": command.client_id,
        }, messages[0]
    else:
        assert not messages, f"{frame!r} sent {messages}"
    if expected.command is not None and outcome in ("join", "leave", "send"):
        model.apply(expected.command)
    model.apply(Command("join", PROBE_ROOM))
    return outcome


TestFrames = fuzz.frame_tests(
    frame_lists=st.lists(chat_frames, min_size=1, max_size=3), deep_frames=deep_frames, max_examples=400
)


# Sends whose text a JSON escape made a lone surrogate (valid JSON, valid UTF-8 on the wire).
unencodable_sends = fuzz.json_frames(
    fuzz.near_valid(
        {"command": st.just("send"), "room": st.sampled_from(START_ROOMS), "text": fuzz.unencodable_text()},
        edges={"text": st.sampled_from(["\ud800", " \udfff ", "a\udc00b", "\ud83d"])},
    )
)


@fuzz.fuzz_settings(max_examples=30)
@given(frame=unencodable_sends)
async def test_text_that_is_no_unicode_is_refused_and_changes_nothing(frame, frames_run):
    await frames_run([frame])


def outcome_check(model: ChatModel, expected: fuzz.Expected, direct: list[fuzz.Event]) -> str:
    """The fuzz frame's direct answers are one the model allows; which ("join", "leave",
    "send", "typing", "members": the normal answer; else the error code)."""
    command = expected.command
    # A send is answered by its message; a typing by nothing (nobody else is in the room to be told).
    if command is not None and command.name in ("send", "typing") and direct == []:
        return command.name
    assert len(direct) == 1, f"expected one answer to the frame, got {direct} (expected {expected})"
    answer = direct[0]
    if command is not None and isinstance(answer, dict) and answer.get("type") != "error":
        if command.name == "join":
            model.joined_check(answer, room=command.room, since=command.since)
        elif command.name == "leave":
            assert answer == {"type": "left", "room": command.room}, answer
        elif command.name == "members":
            model.members_check(answer, command=command)
        else:
            raise AssertionError(f"a send is answered by its message, not {answer}")
        return command.name
    return fuzz.error_check(answer, codes=expected.codes, documented=DOCUMENTED)


# --------------------------------------------------------------------------- ?since=

SESSION_AT_CONNECT = ["lobby", "random"]
LOBBY_MESSAGES = 3


@pytest.fixture
def reconnecting(alice: Browser, probe_room, users, fuzz_limits) -> ChatModel:
    """alice's session is in lobby (3 messages, by bob) and random (none), as a page that reconnects."""
    for number in range(LOBBY_MESSAGES):
        message_create(room=probe_room["lobby"], user=users["bob"], text=f"message {number}")
    session = SessionStore(alice.session_key)
    session[SESSION_ROOMS] = list(SESSION_AT_CONNECT)
    session.save()
    return ChatModel(
        username="alice",
        rooms=probe_room,
        session=list(SESSION_AT_CONNECT),
        joined=set(SESSION_AT_CONNECT),
        events={"lobby": [(seq, "bob", f"message {seq - 1}") for seq in range(1, LOBBY_MESSAGES + 1)]},
        messages=[("lobby", "bob", f"message {number}") for number in range(LOBBY_MESSAGES)],
    )


def since_candidates(query: bytes) -> dict[str, set[int]]:
    """README: ``since=lobby:41,random:7``; items malformed, past the first 50 or
    of rooms not in the session are ignored. Every seq the query gives each room
    (which of two for one room counts is not documented)."""
    seqs: dict[str, set[int]] = {}
    for key, value in parse_qsl(query.decode("latin-1")):
        if key != "since":
            continue
        for item in value.split(",")[:SINCE_ITEMS_MAX]:
            if match := SINCE_ITEM.fullmatch(item):
                seqs.setdefault(match["room"], set()).add(int(match["seq"]))
    return seqs


# Items of ?since=: mostly of the session's rooms with seqs it has, else anything.
since_items = st.lists(
    st.tuples(
        st.sampled_from(START_ROOMS)
        | st.sampled_from(["staff-room", "nowhere", "LOBBY", "a" * 51])
        | fuzz.unicode_text(max_size=8),
        st.integers(min_value=0, max_value=LOBBY_MESSAGES + 1).map(str) | fuzz.query_values(),
    ),
    max_size=60,
).map(lambda items: ",".join(f"{room}:{seq}" for room, seq in items))


@fuzz.fuzz_settings(max_examples=200)
@given(query=fuzz.query_strings({"since": since_items | since_items | fuzz.query_values()}))
async def test_any_query_string_puts_the_socket_back_in_its_rooms(query, fuzz_sockets, alice, reconnecting, fuzz_tally):
    fuzz_tally.consumer = "chat"
    model = reconnecting
    before = await stored(alice.session_key)
    socket = await fuzz_sockets.open(CHAT, query=query, headers=[alice.cookie])
    candidates = since_candidates(query)
    caught_up = 0
    for room in SESSION_AT_CONNECT:
        answer = await answer_next(socket)
        allowed = [model.history(room, since) for since in [None, *sorted(candidates.get(room, ()))]]
        if not candidates.get(room):
            allowed = allowed[:1]  # no seq for the room: its newest 50
        assert isinstance(answer, dict) and (answer.get("type"), answer.get("room")) == ("joined", room), answer
        history = [(event["seq"], event["user"], event["text"]) for event in answer["history"]]
        assert (history, answer["more"]) in allowed, (
            f"query {query!r}: {room} got {(history, answer['more'])}, allowed {allowed}"
        )
        caught_up += len(history) < len(model.events.get(room, []))
    # Still alive: a join and a leave of the probe's room (which leave the session as it was).
    await fuzz.frame_send(socket, PROBE)
    model.joined_check(await answer_next(socket), room=PROBE_ROOM, since=None)
    await fuzz.frame_send(socket, {"command": "leave", "room": PROBE_ROOM})
    assert await answer_next(socket) == {"type": "left", "room": PROBE_ROOM}
    await fuzz_sockets.close(socket)
    assert await stored(alice.session_key) == before
    outcome = "caught-up" if caught_up else "newest"
    event(f"outcome: {outcome}")
    fuzz_tally.count(outcome)


# --------------------------------------------------------------------------- flooding


@pytest.fixture
def flooded(alice: Browser, probe_room) -> fuzz.Flood:
    """alice's tab, with the real frame rate (20 a second, bursts of 40)."""
    return fuzz.Flood(
        consumer="chat", path=CHAT, headers=(alice.cookie,), consumer_class=ChatConsumer, refill=60, codes=DOCUMENTED
    )


TestFlood = fuzz.FloodTests
