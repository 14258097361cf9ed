"""The terminal client (rooms/client.py, manage.py chat_client): what it makes of frames, and
the command itself against the chat served by daphne, as a user runs it, typed into and read
line by line."""

import io
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from websockets.asyncio.server import serve

from realtime_common.testing.servers import LiveSite
from rooms import client as client_module
from rooms.client import ChatClient, Login, RoomView, backoff_delay, socket_address, text_printable, url_with_since

CHAT = Path(__file__).resolve().parents[1]
PASSWORD = "a-long-password-for-the-client"


def event(seq: int, text: str, *, user: str = "bob") -> dict:
    return {
        "type": "message",
        "room": "lobby",
        "seq": seq,
        "id": seq,
        "user": user,
        "text": text,
        "created": "2026-11-21T12:00:00+00:00",
    }


def joined(*history: dict, more: bool = False, members: tuple[str, ...] = ("alice",), count: int | None = None) -> dict:
    return {
        "type": "joined",
        "room": "lobby",
        "title": "Lobby",
        "history": list(history),
        "more": more,
        "members": members,
        "count": len(members) if count is None else count,
    }


def texts(lines: list[str]) -> list[str]:
    return [line.split("] ", 1)[1] for line in lines if line.startswith("[")]


def test_events_are_shown_once_in_seq_order_across_history_and_live_frames():
    view = RoomView(room="lobby")
    assert texts(view.frame_lines(frame=joined(event(1, "one"), event(2, "two")))) == ["bob: one", "bob: two"]
    assert view.frame_lines(frame=event(2, "two")) == []  # in the history and live
    assert texts(view.frame_lines(frame=event(3, "three"))) == ["bob: three"]
    # A reconnect's joined frame brings what came after `since`, and maybe some of it again.
    assert texts(view.frame_lines(frame=joined(event(3, "three"), event(4, "four")))) == ["bob: four"]
    assert view.frame_lines(frame={**event(5, "elsewhere"), "room": "random"}) == []


def test_a_joined_frame_with_more_starts_over_from_its_events_and_says_so():
    view = RoomView(room="lobby", seq=10, joined=True)
    lines = view.frame_lines(frame=joined(event(70, "newest"), more=True))
    assert lines[0].startswith("-- (more was said meanwhile") and texts(lines) == ["bob: newest"]
    # The first join of a busy room has `more` too, with nothing missed.
    assert not RoomView(room="lobby").frame_lines(frame=joined(event(70, "newest"), more=True))[0].startswith("-- (")


def test_presence_changes_and_whole_lists_are_shown():
    view = RoomView(room="lobby")
    assert view.frame_lines(frame=joined(members=("alice", "bob")))[0] == "-- in Lobby: alice, bob"
    change = {"type": "presence", "room": "lobby", "joined": ["carol"], "left": ["bob"], "count": 2}
    assert view.frame_lines(frame=change) == ["-- carol joined", "-- bob left"]
    whole = {"type": "presence", "room": "lobby", "members": ["alice", "carol", "dave"], "count": 3}
    assert view.frame_lines(frame=whole) == ["-- here now: alice, carol, dave"]


def test_a_room_longer_than_its_list_shows_how_many_more_are_in_it():
    view = RoomView(room="lobby")
    assert (
        view.frame_lines(frame=joined(members=("alice", "bob"), count=2002))[0]
        == "-- in Lobby: alice, bob and 2,000 more"
    )
    # A change beyond the listed names still counts: one more, and one named.
    change = {"type": "presence", "room": "lobby", "joined": ["zoe"], "left": [], "count": 2003}
    assert view.frame_lines(frame=change) == ["-- zoe joined"]
    whole = {"type": "presence", "room": "lobby", "members": ["alice", "bob"], "count": 1500}
    assert view.frame_lines(frame=whole) == ["-- here now: alice, bob and 1,498 more"]


def test_who_is_typing_is_shown_when_it_changes():
    view = RoomView(room="lobby")
    typing = [
        view.frame_lines(frame={"type": "typing", "room": "lobby", "users": users})
        for users in (["bob"], ["bob"], ["bob", "carol"], [], ["carol"])
    ]
    assert typing == [["-- typing: bob"], [], ["-- typing: bob, carol"], [], ["-- typing: carol"]]


def test_control_characters_never_reach_the_terminal():
    line = RoomView(room="lobby").frame_lines(frame=joined(event(1, "\x1b[2J\x1b]0;pwned\x07hi\r\nthere é 🙂")))[1]
    assert not any(ord(char) < 32 or 127 <= ord(char) < 160 for char in line)
    assert line.endswith("bob: \ufffd[2J\ufffd]0;pwned\ufffdhi\ufffd\ufffdthere é 🙂")
    assert text_printable(text="tab\there") == "tab\ufffdhere"


def test_a_reconnect_asks_for_what_came_after_the_last_event_shown():
    url = "ws://127.0.0.1:8012/ws/chat/?ticket=abc%3A1"
    assert url_with_since(url=url, room="lobby", seq=None) == url
    assert url_with_since(url=url, room="lobby", seq=41) == f"{url}&since=lobby%3A41"


@pytest.mark.parametrize("code", [1011, 1013])
async def test_a_server_that_accepts_then_closes_gets_ever_fewer_attempts(monkeypatch, code):
    async def accept_then_close(connection):
        await connection.close(code=code)

    waits: list[float] = []
    client = ChatClient(
        login=Login(base_url="http://127.0.0.1", csrf_cookie="csrftoken"), room="lobby", out=io.StringIO()
    )

    async def wait(delay: float) -> None:  # the client's pause between attempts, taken at once and counted
        waits.append(delay)
        client.closing = len(waits) == 12

    async with serve(accept_then_close, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        monkeypatch.setattr(client_module, "ticket_url_fetch", lambda *, login: f"ws://127.0.0.1:{port}/")
        monkeypatch.setattr(client, "reconnect_wait", wait)
        await client.connection_keep()

    # As the page does (socket.js): the first minute holds at most 10 attempts, then one in 15 s at most.
    assert sum(waits[:9]) >= 60, waits
    assert min(waits[9:]) >= 15, waits


def test_a_restart_comes_back_within_a_short_spread_never_sooner_than_the_backoff():
    delays = [backoff_delay(attempt=0, code=1012) for _ in range(200)]
    assert 0.5 <= min(delays) and max(delays) <= 5
    assert max(delays) - min(delays) > 2  # spread out, not all at once
    assert backoff_delay(attempt=8, code=1012) >= 15


def test_localhost_names_are_the_loopback_as_in_browsers():
    assert socket_address(url="ws://ws.localhost:8000/ws/chat/") == {"host": "127.0.0.1"}
    assert socket_address(url="ws://127.0.0.1:8012/ws/chat/") == {}
    assert socket_address(url="wss://ws.example.com/ws/chat/") == {}


# --- the command, against a live site ------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The chat as deployed (one daphne process, the in-memory layer), with alice and bob, and
    two messages carol wrote in the lobby before anyone came."""
    site = LiveSite(directory=CHAT, workdir=tmp_path_factory.mktemp("chat-client"))
    site.prepare()
    site.manage("seed")
    site.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "for name in ['alice', 'bob', 'carol']:\n"
        f"    get_user_model().objects.create_user(name, password={PASSWORD!r})\n",
    )
    carol_says(site, "Anyone here?", "I will wait.")
    yield site
    site.stop()
    assert "Traceback" not in site.logs(), site.logs()


def carol_says(site: LiveSite, *texts: str) -> None:
    """carol's messages in the lobby, in this order."""
    site.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from rooms.models import Room\n"
        "from rooms.services import message_create\n"
        "carol, lobby = get_user_model().objects.get(username='carol'), Room.objects.get(slug='lobby')\n"
        f"for text in {list(texts)!r}:\n"
        "    message_create(room=lobby, user=carol, text=text)\n",
    )


class Terminal:
    """A ``manage.py chat_client`` process: lines typed into its stdin, its output read line by
    line (stderr too) by a thread, so that a test waits for a line with a deadline, never a sleep."""

    def __init__(self, site: LiveSite, *args: str, password: str = PASSWORD):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "chat_client", *args],
            cwd=CHAT,
            env={**site.env, "CHAT_PASSWORD": password},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self.output_read, daemon=True)
        self.reader.start()

    def output_read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, *, timeout: float = 30) -> str:
        """The next line that matches ``pattern``; fails after ``timeout`` seconds, or when the output ends."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {timeout}s; so far: {self.seen}") from None
            if line is None:
                raise AssertionError(f"the output ended before a line matching {pattern!r}: {self.seen}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def type(self, text: str) -> None:
        self.process.stdin.write(f"{text}\n")
        self.process.stdin.flush()

    def end(self) -> int:
        """Ctrl-D: the exit code."""
        self.process.stdin.close()
        return self.process.wait(timeout=20)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdin.close()
        self.reader.join(timeout=5)  # it reads until the end of the output
        self.process.stdout.close()


@pytest.fixture
def terminals():
    started: list[Terminal] = []

    def start(site: LiveSite, *args: str, **kwargs) -> Terminal:
        started.append(Terminal(site, *args, **kwargs))
        return started[-1]

    yield start
    for terminal in started:
        terminal.close()


@pytest.mark.timeout(180)
def test_two_terminals_talk_and_catch_up_after_the_server_restarts(site, terminals):
    url = site.serve()
    port = int(url.rsplit(":", 1)[1])
    alice = terminals(site, "--url", url, "--user", "alice", "--room", "lobby")
    alice.expect(r"^-- connected to ws://127\.0\.0\.1:\d+/ws/chat/$")
    alice.expect(r"^-- in Lobby: alice$")
    alice.expect(r"^\[\d\d:\d\d\] carol: Anyone here\?$")
    alice.expect(r"^\[\d\d:\d\d\] carol: I will wait\.$")

    bob = terminals(site, "--url", url, "--user", "bob", "--room", "lobby")
    bob.expect(r"^-- in Lobby: alice, bob$")
    alice.expect(r"^-- bob joined$")
    bob.type("Hello from bob")
    alice.expect(r"^\[\d\d:\d\d\] bob: Hello from bob$")
    alice.type("Hi bob")
    bob.expect(r"^\[\d\d:\d\d\] alice: Hi bob$")
    alice.expect(r"^\[\d\d:\d\d\] alice: Hi bob$")  # the sender's copy: the server's acknowledgement

    # The server goes (SIGTERM: its sockets close with 1012); carol writes meanwhile; it comes back.
    site.stop()
    for terminal in [alice, bob]:
        terminal.expect(r"^-- disconnected \(closed with 1012\); reconnecting in")
    alice.type("Lost in the gap")
    alice.expect(r"^! Not connected right now: not sent")
    carol_says(site, "Missed while you were away")
    shown = len(alice.seen)
    site.serve(port=port)
    # A new ticket, the session's room back with `since`: only what was missed, once.
    alice.expect(r"^-- connected to ", timeout=60)
    alice.expect(r"^\[\d\d:\d\d\] carol: Missed while you were away$")
    bob.expect(r"^\[\d\d:\d\d\] carol: Missed while you were away$", timeout=60)
    bob.type("Back again")
    alice.expect(r"^\[\d\d:\d\d\] bob: Back again$")
    assert not [line for line in alice.seen[shown:] if re.search("Hello from bob|Hi bob|I will wait", line)]

    assert alice.end() == 0
    bob.expect(r"^-- alice left$")
    assert bob.end() == 0


def test_a_wrong_password_or_room_ends_the_command_with_an_error(site, terminals):
    url = site.serve()
    wrong = terminals(site, "--url", url, "--user", "alice", password="not the password")
    wrong.expect(r"CommandError: Could not log in as 'alice'")
    assert wrong.process.wait(timeout=20) == 1
    nowhere = terminals(site, "--url", url, "--user", "alice", "--room", "no-such-room")
    nowhere.expect(r"CommandError: Cannot join 'no-such-room': There is no room 'no-such-room'\.")
    assert nowhere.process.wait(timeout=20) == 1
