"""Pages as the test sees them: one WebSocket each, kept connected the way the
browser's ``JsonSocket`` (frontend/js/socket.js) keeps it: after a failed attempt
(refused, reset, no HTTP answer, a 5xx) or any close but a final one (4400-4499) it
tries again as socket.js's ``ReconnectPolicy`` says, and each attempt carries the
page's resume parameters (``since``). A page given several servers goes to the next
one when a connection attempt fails, as a load balancer skips a dead server.

Everything a page receives is applied to its state as the site's own page does
(liveblog.js, chat.js, board.js), and recorded with its arrival time
(``time.monotonic()``), so tests wait on events (``until``) and measure delays.
"""

import asyncio
import json
import random
import socket
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

# socket.js's ReconnectPolicy: a delay in the upper half of a ceiling that doubles from the
# base to the max with each attempt; the count starts over only once a connection stayed open
# STABLE_SECONDS (a server that accepts and closes at once gets fewer and fewer attempts); after
# a close with 1012 (a deploy) a random spread, never shorter than the backoff. So a page makes
# at most ATTEMPTS_FIRST_MINUTE attempts in the first minute of an incident.
BACKOFF_BASE, BACKOFF_MAX, STABLE_SECONDS = 0.5, 30.0, 30.0
RESTART_SPREAD = (0.5, 5.0)
CLOSE_SERVICE_RESTART = 1012
ATTEMPTS_FIRST_MINUTE = 9
# How long an attempt waits for the server's answer to its handshake: as long as a browser behind
# nginx/default.conf (its proxy_read_timeout). Giving up sooner would retry while the first attempt
# is still queued at the server, which then serves both.
OPEN_TIMEOUT = 60.0


def backoff_ceiling(*, attempt: int) -> float:
    """The longest wait before attempt number ``attempt + 1`` (after a 1012: or the restart spread's)."""
    return min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt)


def backoff(*, attempt: int, code: int | None, rng: random.Random) -> float:
    """Seconds before attempt number ``attempt + 1``, after a close with ``code`` (None: the attempt failed)."""
    ceiling = backoff_ceiling(attempt=attempt)
    delay = ceiling / 2 + rng.random() * ceiling / 2
    if code == CLOSE_SERVICE_RESTART:
        delay = max(delay, rng.uniform(*RESTART_SPREAD))
    return delay


def is_final(code: int | None) -> bool:
    return code is not None and 4400 <= code <= 4499


def ws_url(base: str, path: str, params: dict | None) -> str:
    url = base.replace("http://", "ws://", 1) + path
    params = {key: value for key, value in (params or {}).items() if value is not None}
    return f"{url}?{urlencode(params)}" if params else url


def origin(base: str) -> str:
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def http_json(url: str, *, cookie: str | None = None, timeout: float = 5) -> dict:
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", **({"Cookie": cookie} if cookie else {})}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class Page:
    """One tab's socket. ``start()`` returns once it is open (and ready, for pages
    that wait for a first frame)."""

    path = "/"

    def __init__(
        self, *, name: str, urls: list[str], cookie: str | None = None, seed: int = 0, rcvbuf: int | None = None
    ):
        self.name = name
        self.urls = list(urls)
        self.server = 0  # index into urls of the server it talks to
        self.cookie = cookie
        self.rng = random.Random(seed or hash(name))
        self.rcvbuf = rcvbuf
        self.ws = None
        self.task: asyncio.Task | None = None
        self.stopped = False
        self.opens: list[tuple[float, str]] = []  # (when, server URL)
        self.closes: list[tuple[float, int | None]] = []  # (when, close code; 1006: dropped without a close frame)
        self.failures: list[tuple[float, str]] = []  # failed connection attempts
        self.frames: list[tuple[float, dict]] = []
        self.errors: list[dict] = []
        self.changed = asyncio.Condition()
        self.reading = asyncio.Event()  # cleared: the page stops reading (its socket's buffers fill up)
        self.reading.set()

    def pause(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    # -- connection -------------------------------------------------------------------------

    def resume(self) -> dict:
        return {}

    @property
    def open(self) -> bool:
        return self.ws is not None

    async def start(self, *, timeout: float = 10.0) -> "Page":
        self.task = asyncio.create_task(self.run())
        await self.until(lambda: self.ready, timeout=timeout, what=f"{self.name} ready")
        return self

    @property
    def ready(self) -> bool:
        return self.open

    async def stop(self) -> None:
        self.stopped = True
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: BLE001 - it may be gone already
                pass
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    async def socket_open(self, url: str):
        sock = None
        if self.rcvbuf:
            parts = urlsplit(url)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        return await connect(
            url,
            origin=origin(self.urls[self.server]),
            additional_headers={"Cookie": self.cookie} if self.cookie else None,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=None,  # daphne pings; the client answers
            close_timeout=2,
            max_size=None,
            max_queue=4 if self.rcvbuf else 64,
            compression=None,
            proxy=None,
            sock=sock,
        )

    @property
    def attempts(self) -> int:
        """Connection attempts so far: the failed ones and the opened ones."""
        return len(self.failures) + len(self.opens)

    async def run(self) -> None:
        attempt = 0
        while not self.stopped:
            base = self.urls[self.server]
            try:
                ws = await self.socket_open(ws_url(base, self.path, self.resume()))
            except Exception as error:  # noqa: BLE001 - refused, reset, no HTTP answer, HTTP 5xx: again, elsewhere
                self.failures.append((time.monotonic(), f"{base}: {type(error).__name__}: {error}"))
                self.server = (self.server + 1) % len(self.urls)
                await asyncio.sleep(backoff(attempt=attempt, code=None, rng=self.rng))
                attempt += 1
                continue
            opened = time.monotonic()
            self.ws = ws
            self.opens.append((opened, base))
            await self.opened()
            await self.notify()
            await self.read(ws)
            code = ws.close_code if ws.close_code is not None else 1006
            self.ws = None
            self.closes.append((time.monotonic(), code))
            await self.closed(code)
            await self.notify()
            if self.stopped or is_final(code):
                return
            if time.monotonic() - opened >= STABLE_SECONDS:
                attempt = 0
            await asyncio.sleep(backoff(attempt=attempt, code=code, rng=self.rng))
            attempt += 1

    async def read(self, ws) -> None:
        try:
            async for text in ws:
                await self.reading.wait()
                frame = json.loads(text)
                self.frames.append((time.monotonic(), frame))
                if frame.get("type") == "error":
                    self.errors.append(frame)
                await self.apply(frame)
                await self.notify()
        except ConnectionClosed:
            pass
        except OSError:
            pass

    async def send(self, frame: dict) -> bool:
        if self.ws is None:
            return False
        try:
            await self.ws.send(json.dumps(frame))
            return True
        except ConnectionClosed:
            return False

    # -- what subclasses do -------------------------------------------------------------------

    async def opened(self) -> None:
        pass

    async def closed(self, code: int) -> None:
        pass

    async def apply(self, frame: dict) -> None:
        pass

    # -- waiting ----------------------------------------------------------------------------

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, predicate: Callable[[], bool], *, timeout: float, what: str = "") -> float:
        """Wait until ``predicate()`` holds (checked on every frame and state change); the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        async with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{what or self.name}: not within {timeout} s")
                try:
                    await asyncio.wait_for(self.changed.wait(), remaining)
                except TimeoutError:
                    pass
        return time.monotonic() - started


async def all_until(pages, predicate: Callable[[Page], bool], *, timeout: float, what: str) -> float:
    """Wait until ``predicate(page)`` holds for every page; the seconds it took (bounded by ``timeout``)."""
    started = time.monotonic()
    await asyncio.gather(
        *(
            page.until(lambda page=page: predicate(page), timeout=timeout, what=f"{what} ({page.name})")
            for page in pages
        )
    )
    return time.monotonic() - started


@asynccontextmanager
async def pages_open(*, pages: list[Page]) -> AsyncIterator[list[Page]]:
    """The pages started together, and stopped together however the test ends: every page
    in ``pages`` by then, so one the test adds to the list before starting it is stopped too
    (a page left running would reconnect into the next test's servers)."""
    try:
        await asyncio.gather(*(page.start() for page in pages))
        yield pages
    finally:
        await asyncio.gather(*(page.stop() for page in pages))


class LiveblogPage(Page):
    """liveblog.js: the posts by id, the seq of the last event applied; on resync,
    the list again over HTTP (then the server closes 4000 and the page reconnects).
    ``seq``: the seq the page was rendered with, when the test read it once for many pages
    (the page loads no list of its own, and knows only the posts it is sent)."""

    def __init__(self, *, slug: str, seq: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.slug = slug
        self.path = f"/ws/liveblog/{slug}/"
        self.seq = seq
        self.posts: dict[int, str] = {}
        self.seqs: list[int] = []  # every event applied, in order
        self.duplicates = 0
        self.resyncs = 0

    def load(self) -> None:
        """What the page is rendered with: the posts and their seq (``GET /<slug>/posts/``)."""
        snapshot = http_json(f"{self.urls[self.server]}/{self.slug}/posts/")
        self.seq = snapshot["seq"]
        self.posts = {post["id"]: post["html"] for post in snapshot["posts"]}

    async def start(self, *, timeout: float = 10.0) -> "LiveblogPage":
        if self.seq is None:
            await asyncio.to_thread(self.load)
        return await super().start(timeout=timeout)

    def resume(self) -> dict:
        return {"since": self.seq}

    async def apply(self, frame: dict) -> None:
        kind = frame.get("type", "")
        if kind == "resync":
            self.resyncs += 1
            await asyncio.to_thread(self.load)
            return
        if not kind.startswith("post."):
            return
        if self.seq is not None and frame["seq"] <= self.seq:
            self.duplicates += 1
            return
        self.seq = frame["seq"]
        self.seqs.append(frame["seq"])
        if kind == "post.deleted":
            self.posts.pop(frame["post"]["id"], None)
        else:
            self.posts[frame["post"]["id"]] = frame["post"]["html"]

    def has(self, text: str) -> bool:
        return any(text in html for html in self.posts.values())


class ChatPage(Page):
    """chat.js: per room, the messages by id and the seq of the last event applied, the members."""

    path = "/ws/chat/"

    def __init__(self, *, rooms: list[str], **kwargs):
        super().__init__(**kwargs)
        self.rooms = list(rooms)
        self.joined: set[str] = set()  # rooms the server put this socket in, on this connection
        self.seqs: dict[str, int] = {}
        self.messages: dict[str, dict[int, str]] = {room: {} for room in rooms}
        self.members: dict[str, set[str]] = {room: set() for room in rooms}
        self.duplicates = 0
        self.asked = False

    @property
    def ready(self) -> bool:
        return self.open and set(self.rooms) <= self.joined

    def resume(self) -> dict:
        since = ",".join(f"{room}:{seq}" for room, seq in self.seqs.items())
        return {"since": since or None}

    async def opened(self) -> None:
        self.joined = set()
        if not self.asked:  # the first time; afterwards the session puts the socket back into its rooms
            self.asked = True
            for room in self.rooms:
                await self.send({"command": "join", "room": room})

    async def apply(self, frame: dict) -> None:
        kind = frame.get("type")
        room = frame.get("room")
        if kind == "joined":
            self.joined.add(room)
            if frame["more"]:
                self.messages[room] = {}
            for event in frame["history"]:
                self.event_apply(room, event)
            self.members[room] = set(frame["members"])
        elif kind in ("message", "message.deleted"):
            self.event_apply(room, frame)
        elif kind == "presence":
            if "members" in frame:
                self.members[room] = set(frame["members"])
            else:
                self.members[room] |= set(frame["joined"])
                self.members[room] -= set(frame["left"])
        elif kind == "left":
            self.joined.discard(room)

    def event_apply(self, room: str, event: dict) -> None:
        if event["seq"] <= self.seqs.get(room, 0):
            self.duplicates += 1
            return
        self.seqs[room] = event["seq"]
        if event["type"] == "message.deleted":
            self.messages[room].pop(event["id"], None)
        else:
            self.messages[room][event["id"]] = event["text"]

    def has(self, room: str, text: str) -> bool:
        return any(text == stored for stored in self.messages[room].values())

    async def say(self, room: str, text: str) -> bool:
        return await self.send({"command": "send", "room": room, "text": text})


class BoardPage(Page):
    """board.js: the finished strokes (replaced by every snapshot), strokes appear as drawn."""

    def __init__(self, *, slug: str, **kwargs):
        super().__init__(**kwargs)
        self.path = f"/ws/sketchpad/{slug}/"
        self.strokes: set[str] = set()  # finished strokes, by id
        self.drawing: dict[str, int] = {}  # points seen of strokes in progress
        self.snapshots = 0
        self.you: str | None = None

    @property
    def ready(self) -> bool:
        return self.open and self.snapshots > 0 and self.you is not None

    async def opened(self) -> None:
        self.you = None

    async def apply(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "snapshot":
            self.snapshots += 1
            self.you = frame["you"]
            self.strokes = {stroke["stroke"] for stroke in frame["strokes"]}
        elif kind == "draw":
            self.drawing[frame["stroke"]] = self.drawing.get(frame["stroke"], 0) + len(frame["points"])
            if frame["done"]:
                self.strokes.add(frame["stroke"])
        elif kind == "erase":
            self.strokes.discard(frame["stroke"])
        elif kind == "clear":
            self.strokes.clear()

    async def draw(self, stroke: str, points: list, *, done: bool) -> bool:
        frame = {"type": "draw", "stroke": stroke, "color": "#336699", "width": 6, "points": points, "done": done}
        sent = await self.send(frame)
        if sent and done:
            self.strokes.add(stroke)  # the page draws its own stroke; the server sends it no copy
        return sent


class GalleryPage(Page):
    path = "/ws/sketchpad/"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.thumbnails: dict[str, str | None] = {}

    @property
    def ready(self) -> bool:
        return self.open and bool(self.frames)

    async def apply(self, frame: dict) -> None:
        if frame.get("type") == "thumbnails":
            self.thumbnails.update(frame["boards"])
