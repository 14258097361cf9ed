"""The chat in a terminal (``manage.py chat_client``): what the page does, over HTTP and the
socket protocol of chat/README.md (the chat protocol).

It logs in as a browser does (the login form, with the CSRF cookie the form sets), and before
each connect POSTs /ws-ticket/ for a single-use ticket and opens the socket at the ticket's URL,
sending the site's own origin as its Origin (the sockets accept the site's pages only). It joins
the room once: the session keeps it, and each new socket of the session is put back in it with
what came after ``since``, the seq of the last event shown. Each line typed is sent to the room.
"""

import asyncio
import contextlib
import http.cookiejar
import json
import random
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Origin

HTTP_TIMEOUT = 10
# The page's reconnect policy (frontend/js/socket.js): a delay in the upper half of a ceiling
# that doubles from the base to the max, starting over only once a connection stayed open
# STABLE_SECONDS (a server that accepts and closes at once is not hammered), and after a
# restart (1012, a deploy) a random spread, never shorter than the backoff.
BACKOFF_BASE, BACKOFF_MAX, STABLE_SECONDS = 0.5, 30.0, 30.0
RESTART_SPREAD = (0.5, 5.0)
CLOSE_SERVICE_RESTART = 1012
# A joined frame holds up to 50 messages of up to 24.5 KB (chat/README.md): over websockets' 1 MiB default.
FRAME_MAX_BYTES = 4 * 1024 * 1024
# What the first join may answer that no retry can change.
JOIN_REFUSALS = ("room_not_found", "forbidden", "invalid_room")


class ClientStopped(Exception):
    """Nothing more to do: a wrong password, a room that cannot be joined, logged out."""


@dataclass
class Login:
    """A browser's login to the site: its cookies, sent with every request."""

    base_url: str
    csrf_cookie: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def cookie(self, name: str) -> str | None:
        return next((cookie.value for cookie in self.jar if cookie.name == name), None)

    def request(self, path: str, *, form: dict | None = None) -> bytes:
        """GET ``path``, or POST ``form`` to it with the CSRF token, as the site's own page would."""
        data, headers = None, {}
        if form is not None:
            token = self.cookie(self.csrf_cookie) or ""
            data = urlencode({**form, "csrfmiddlewaretoken": token}).encode()
            headers = {"X-CSRFToken": token, "Origin": self.origin, "Referer": f"{self.base_url}{path}"}
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, headers=headers)
        with opener.open(request, timeout=HTTP_TIMEOUT) as response:
            return response.read()


def login_open(*, base_url: str, username: str, password: str, session_cookie: str, csrf_cookie: str) -> Login:
    """Logs in with the site's login form; ClientStopped when the site does not take the password."""
    login = Login(base_url=base_url.rstrip("/"), csrf_cookie=csrf_cookie)
    login.request("/accounts/login/")  # sets the CSRF cookie
    login.request("/accounts/login/", form={"username": username, "password": password})
    if login.cookie(session_cookie) is None:
        raise ClientStopped(f"Could not log in as {username!r} at {login.base_url}: wrong user name or password?")
    return login


def ticket_url_fetch(*, login: Login) -> str:
    """The URL of a new socket: the ticket's, which works once, within seconds."""
    try:
        grant = json.loads(login.request("/ws-ticket/", form={}))
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise ClientStopped("Logged out: the site gives this login no more tickets.") from None
        raise
    return grant["url"]


def url_with_since(*, url: str, room: str, seq: int | None) -> str:
    """``url`` asking for the room's events after ``seq`` (all of the newest without one)."""
    if seq is None:
        return url
    parts = urlsplit(url)
    return parts._replace(query=urlencode([*parse_qsl(parts.query), ("since", f"{room}:{seq}")])).geturl()


def socket_address(*, url: str) -> dict:
    """Where to connect for ``url``: *.localhost is the loopback (RFC 6761), which browsers know
    but many system resolvers do not (the compose stack's ws.localhost)."""
    host = urlsplit(url).hostname or ""
    return {"host": "127.0.0.1"} if host.endswith(".localhost") else {}


def text_printable(*, text: str) -> str:
    """Other people's text, safe for a terminal: control characters (escape sequences that move
    the cursor or rewrite the screen) are shown as U+FFFD, never sent to the terminal as such."""
    return "".join("\N{REPLACEMENT CHARACTER}" if unicodedata.category(char) == "Cc" else char for char in text)


def backoff_delay(*, attempt: int, code: int | None) -> float:
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt)
    delay = ceiling / 2 + random.random() * ceiling / 2
    if code == CLOSE_SERVICE_RESTART:
        delay = max(delay, random.uniform(*RESTART_SPREAD))
    return delay


@dataclass
class RoomView:
    """What the terminal shows of one room: its events in seq order, each once, as chat.js
    applies them (history and live events may overlap around a join)."""

    room: str
    seq: int | None = None  # of the last event shown
    members: set[str] = field(default_factory=set)  # the names it was told of: the first page, and who came since
    count: int = 0  # everyone in the room, listed or not
    typing: list[str] = field(default_factory=list)
    joined: bool = False

    def frame_lines(self, *, frame: dict) -> list[str]:
        """The lines to print for a frame from the server (none for other rooms' and unknown ones)."""
        kind = frame.get("type")
        if frame.get("room") != self.room:
            return []
        if kind == "joined":
            gap = frame["more"] and self.seq is not None
            if frame["more"]:
                self.seq = None  # not everything since the last event shown: start from these
            self.joined, self.members, self.count = True, set(frame["members"]), frame["count"]
            return [
                *(["-- (more was said meanwhile than the room keeps: its newest messages)"] if gap else []),
                f"-- in {text_printable(text=frame['title'])}: {self.members_text()}",
                *self.events_lines(events=frame["history"]),
            ]
        if kind in ("message", "message.deleted"):
            return self.events_lines(events=[frame])
        if kind == "presence":
            return self.presence_lines(frame=frame)
        if kind == "typing":
            return self.typing_lines(users=frame["users"])
        if kind == "error":
            return [f"! {text_printable(text=frame['detail'])}"]
        return []

    def events_lines(self, *, events: list[dict]) -> list[str]:
        lines = []
        for event in events:
            if self.seq is not None and event["seq"] <= self.seq:
                continue
            self.seq = event["seq"]
            if event["type"] == "message.deleted":
                lines.append("-- a message was deleted")
            else:
                time = datetime.fromisoformat(event["created"]).astimezone().strftime("%H:%M")
                lines.append(f"[{time}] {text_printable(text=event['user'])}: {text_printable(text=event['text'])}")
        return lines

    def presence_lines(self, *, frame: dict) -> list[str]:
        self.count = frame["count"]
        if "members" in frame:  # the first page, after a change may have been missed
            self.members = set(frame["members"])
            return [f"-- here now: {self.members_text()}"]
        self.members = (self.members - set(frame["left"])) | set(frame["joined"])
        return [
            *(f"-- {text_printable(text=name)} joined" for name in frame["joined"]),
            *(f"-- {text_printable(text=name)} left" for name in frame["left"]),
        ]

    def typing_lines(self, *, users: list[str]) -> list[str]:
        """Who types now, when that changes; that nobody does any more is no news worth a line."""
        changed, self.typing = users != self.typing, users
        if not (changed and users):
            return []
        return [f"-- typing: {', '.join(text_printable(text=name) for name in users)}"]

    def members_text(self) -> str:
        """The names it knows, and how many more are in the room (a long list comes a page at a time)."""
        names = ", ".join(text_printable(text=name) for name in sorted(self.members)) or "nobody"
        unlisted = self.count - len(self.members)
        return f"{names} and {unlisted:,} more" if unlisted > 0 else names


class ChatClient:
    """One login in one room: a socket kept open, with a new ticket for each connect."""

    def __init__(self, *, login: Login, room: str, out: TextIO):
        self.login = login
        self.view = RoomView(room=room)
        self.out = out
        self.socket: ClientConnection | None = None  # while connected
        self.closing = False

    def say(self, *lines: str) -> None:
        for line in lines:
            self.out.write(f"{line}\n")
        self.out.flush()

    async def run(self, *, lines: asyncio.Queue) -> None:
        """Until the input ends (``lines`` gives None); ClientStopped when the server ends it first."""
        connection = asyncio.create_task(self.connection_keep())
        typing = asyncio.create_task(self.lines_send(lines=lines))
        await asyncio.wait({connection, typing}, return_when=asyncio.FIRST_COMPLETED)
        typing.cancel()
        if not connection.done():
            self.closing = True
            if self.socket is not None:
                await self.socket.close()  # a goodbye: the room sees this user leave at once
            connection.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connection

    async def connection_keep(self) -> None:
        attempt = 0
        while not self.closing:
            code = opened = None  # the server's close code, and when the socket opened, once connected
            try:
                url = await asyncio.to_thread(ticket_url_fetch, login=self.login)
                async with connect(
                    url_with_since(url=url, room=self.view.room, seq=self.view.seq),
                    origin=Origin(self.login.origin),
                    max_size=FRAME_MAX_BYTES,
                    open_timeout=HTTP_TIMEOUT,
                    **socket_address(url=url),
                ) as socket:
                    opened = time.monotonic()
                    self.socket = socket
                    # Not the ticket: it is a credential, if only for seconds.
                    self.say(f"-- connected to {urlsplit(url)._replace(query='').geturl()}")
                    # A server may close right after accepting (too many sockets, a crash): a drop like any.
                    with contextlib.suppress(ConnectionClosed):
                        if not self.view.joined:
                            await socket.send(json.dumps({"command": "join", "room": self.view.room}))
                        async for text in socket:
                            self.frame_show(frame=json.loads(text))
                    code = socket.close_code
                    why = f"closed with {code}"
            # Refused handshakes (an expired ticket), network and HTTP errors: try again.
            except (OSError, InvalidHandshake, TimeoutError) as error:
                why = str(error) or type(error).__name__
            finally:
                self.socket = None
            if self.closing:
                return
            # 4400-4499: refused for good (4401: logged out), as the page reads them.
            if code is not None and 4400 <= code <= 4499:
                raise ClientStopped(f"Disconnected for good ({why}): logged out?")
            if opened is not None and time.monotonic() - opened >= STABLE_SECONDS:
                attempt = 0
            delay = backoff_delay(attempt=attempt, code=code)
            attempt += 1
            self.say(f"-- disconnected ({why}); reconnecting in {delay:.1f} s")
            await self.reconnect_wait(delay)

    async def reconnect_wait(self, delay: float) -> None:
        """The pause between attempts: a method of its own, so that a test can count the pauses."""
        await asyncio.sleep(delay)

    def frame_show(self, *, frame: dict) -> None:
        if frame.get("type") == "error" and frame.get("code") in JOIN_REFUSALS and not self.view.joined:
            raise ClientStopped(f"Cannot join {self.view.room!r}: {frame['detail']}")
        self.say(*self.view.frame_lines(frame=frame))

    async def lines_send(self, *, lines: asyncio.Queue) -> None:
        while (line := await lines.get()) is not None:
            if not (text := line.strip()):
                continue
            if self.socket is not None and self.view.joined:
                with contextlib.suppress(ConnectionClosed):
                    await self.socket.send(json.dumps({"command": "send", "room": self.view.room, "text": text}))
                    continue
            self.say("! Not connected right now: not sent. Try again in a moment.")


def lines_read(*, stream: TextIO, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue) -> None:
    """In a thread of its own (reading blocks): each line of ``stream``, then None at its end."""
    for line in stream:
        loop.call_soon_threadsafe(lines.put_nowait, line)
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def client_run(*, login: Login, room: str, stdin: TextIO, out: TextIO) -> None:
    lines: asyncio.Queue = asyncio.Queue()
    reader = threading.Thread(
        target=lines_read, kwargs={"stream": stdin, "loop": asyncio.get_running_loop(), "lines": lines}, daemon=True
    )
    reader.start()
    await ChatClient(login=login, room=room, out=out).run(lines=lines)
