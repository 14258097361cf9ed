"""The client's sockets and what they receive: expectations (frames waited for, with their
latencies), presence watches, and the sent draw batches that relayed ones are matched with."""

import asyncio
import contextlib
import json
import logging
import re
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench import wire
from bench.stats import summary

# Frames up to this size: a chat presence frame lists every member of a big room.
MAX_FRAME = 16 * 1024 * 1024

logger = logging.getLogger("bench.client")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def url_check(*, url: str) -> None:
    """Loopback only: the harness never loads anything but this machine."""
    host = urlsplit(url).hostname or ""
    if not host.startswith("127."):
        raise ValueError(f"refusing to connect outside 127.0.0.0/8: {url}")


@dataclass(eq=False)
class Conn:
    """One WebSocket of the client, and what it is for."""

    index: int
    group: str
    url: str
    origin: str | None = None
    cookie: str | None = None  # the whole Cookie header, e.g. "sessionid=..."
    user: str | None = None
    room: str | None = None  # the chat room it joins, or the baseline room it is in
    ws: ClientConnection | None = None
    reader: asyncio.Task | None = None
    ready: asyncio.Future | None = None  # set by the first joined / snapshot frame
    close_code: int | None = None
    frames: int = 0
    errors: Counter = field(default_factory=Counter)
    window_sends: dict[int, int] = field(default_factory=dict)  # chat rate limit window → messages sent


# The fields of a Conn that describe the socket; the others are one connection's state, which a
# reopened socket must start without.
CONN_DESCRIPTION = ("index", "group", "url", "origin", "cookie", "user", "room")


def conn_renew(*, conn: Conn) -> Conn:
    """The same socket, to be opened again: its description, index included (part of the key its
    frames are counted under), and none of the old connection's state."""
    return Conn(**{name: getattr(conn, name) for name in CONN_DESCRIPTION})


@dataclass(frozen=True)
class Opening:
    """How a batch of sockets is opened (the connect and reconnect ops' arguments): ``ready``
    "open", or wait for the first "joined" / "snapshot" frame; ``send_join``: the chat's join
    command first; at most ``concurrency`` handshakes at once; ``open_timeout`` per handshake,
    ``ready_timeout`` per first frame, ``deadline`` for the whole batch."""

    ready: str = "open"
    send_join: bool = False
    concurrency: int = 100
    open_timeout: float = 30.0
    ready_timeout: float = 30.0
    deadline: float = 120.0


@dataclass
class Expectation:
    """Frames the client waits for: ``done`` is set once ``delivered`` reaches ``expected``
    and no more are coming (``sealed``). Latencies are kept per bucket (a post, a step, a board)."""

    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    outsiders: int = 0  # frames that reached a socket not expected to get them (not counted as delivered)
    sealed: bool = False
    latencies: dict[str, list[float]] = field(default_factory=dict)
    seen: set = field(default_factory=set)
    members: set | None = None  # the connections expected to receive, None: any
    done: asyncio.Event = field(default_factory=asyncio.Event)
    first_at: float | None = None
    last_at: float | None = None

    def record(self, *, conn: Conn, key, bucket: str, latency: float, now: float) -> None:
        if self.members is not None and conn not in self.members:
            self.outsiders += 1
            return
        if (conn.index, conn.group, key) in self.seen:
            self.duplicates += 1
            return
        self.seen.add((conn.index, conn.group, key))
        self.delivered += 1
        self.latencies.setdefault(bucket, []).append(latency)
        self.first_at = self.first_at or now
        self.last_at = now
        self.check()

    def seal(self) -> None:
        self.sealed = True
        self.check()

    def check(self) -> None:
        if self.sealed and self.delivered >= self.expected:
            self.done.set()

    async def wait(self, *, timeout: float) -> bool:
        self.check()
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def report(self) -> dict:
        every = [value for values in self.latencies.values() for value in values]
        return {
            "expected": self.expected,
            "delivered": self.delivered,
            "delivery_pct": round(100.0 * self.delivered / self.expected, 3) if self.expected else None,
            "duplicates": self.duplicates,
            "outsiders": self.outsiders,
            "latency_ms": summary(values=every),
        }


@dataclass
class PresenceWatch:
    """Waits until every connection in ``pending`` has been told ``username`` is (or is not) in the room."""

    username: str
    present: bool
    room: str
    pending: set
    watched: int
    started: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    last_at: float | None = None
    frames: int = 0

    def offer(self, *, conn: Conn, text: str, now: float) -> None:
        if conn not in self.pending or f'"{self.room}"' not in text:
            return
        self.frames += 1
        if presence_includes(text=text, username=self.username) is self.present:
            self.pending.discard(conn)
            self.last_at = now
            if not self.pending:
                self.done.set()


def presence_includes(*, text: str, username: str) -> bool | None:
    """Does a presence frame say the user is in the room? Accepts the full ``members`` list and
    ``joined``/``left`` diffs; None if the frame says nothing about the user."""
    quoted = f'"{username}"'
    if '"members"' in text:
        # Usernames are unique, quoted strings: a substring test is exact and avoids
        # parsing the frame on each of thousands of sockets.
        if quoted in text:
            return True
        # A list holds the room's first CHAT_MEMBERS_LISTED names (chat/README.md): one shorter than
        # its count says nothing of a name not in it.
        frame = json.loads(text)
        return False if len(frame["members"]) >= frame["count"] else None
    if quoted not in text:
        return None
    frame = json.loads(text)
    if username in (frame.get("joined") or []):
        return True
    if username in (frame.get("left") or []):
        return False
    return None


@dataclass
class CursorTally:
    """The cursor frames movers sent, by (mover, sequence number), and the copies the other
    sockets of their board received: each frame should reach ``receivers`` of them."""

    receivers: int
    sent: dict[tuple[int, int], tuple[float, Conn]] = field(default_factory=dict)  # perf_counter, sender
    delivered: int = 0
    out_of_order: int = 0  # a copy not newer than the last one from its mover: a duplicate, or late
    echoes: int = 0  # copies a mover got of its own cursor (the protocol says: never)
    latencies: list[float] = field(default_factory=list)
    # (receiver, mover) -> the latest sequence number received: one mover's frames reach a socket in order.
    latest: dict[tuple[int, str, int], int] = field(default_factory=dict)

    def offer(self, *, conn: Conn, text: str) -> None:
        key = wire.cursor_key(text=text)
        sent = self.sent.get(key) if key else None
        if sent is None:
            return  # a removal: not counted
        sent_at, sender = sent
        if sender is conn:
            self.echoes += 1
            return
        mover, sequence = key
        if self.latest.get((conn.index, conn.group, mover), 0) >= sequence:
            self.out_of_order += 1
            return
        self.latest[(conn.index, conn.group, mover)] = sequence
        self.delivered += 1
        self.latencies.append(time.perf_counter() - sent_at)

    def expected(self) -> int:
        return len(self.sent) * self.receivers

    def report(self) -> dict:
        return {
            "sent": len(self.sent),
            "receivers": self.receivers,
            "expected": self.expected(),
            "delivered": self.delivered,
            "out_of_order": self.out_of_order,
            "echoes": self.echoes,
            "latency_ms": summary(values=self.latencies),
        }


@dataclass
class TypingWatch:
    """What the sockets of a chat room are told of who is typing: each one's latest list, each
    frame's time, and whether every watcher (a socket not typing) has the list ``want`` yet."""

    room: str
    watchers: set
    lists: dict = field(default_factory=dict)  # Conn -> frozenset of usernames
    frames: list[float] = field(default_factory=list)  # time.time() of each typing frame received
    sent: list[float] = field(default_factory=list)  # time.time() of each typing command sent
    want: frozenset = frozenset()
    matching: set = field(default_factory=set)  # the watchers whose list is ``want``
    done: asyncio.Event = field(default_factory=asyncio.Event)
    last_at: float | None = None  # when the latest watcher got ``want``
    task: asyncio.Task | None = None  # the typists' typing

    def aim(self, *, users: frozenset) -> None:
        """From now on, wait for every watcher's list to be ``users``."""
        self.want, self.last_at = users, None
        self.matching = {conn for conn in self.watchers if self.lists.get(conn, frozenset()) == users}
        self.done = asyncio.Event()
        self.check()

    def offer(self, *, conn: Conn, text: str, now: float) -> None:
        if f'"{self.room}"' not in text:
            return
        users = frozenset(json.loads(text)["users"])  # short lists: parsed
        self.lists[conn] = users
        self.frames.append(now)
        if conn in self.watchers:
            if users == self.want:
                self.matching.add(conn)
                self.last_at = now
            else:
                self.matching.discard(conn)
            self.check()

    def check(self) -> None:
        if len(self.matching) == len(self.watchers):
            self.done.set()


@dataclass
class SentDraw:
    sent_at: float  # perf_counter, compared with the receivers' perf_counter in this process
    sender: Conn
    board: str


class ClientState:
    def __init__(self) -> None:
        self.groups: dict[str, list[Conn]] = {}
        self.expect: Expectation | None = None
        self.presence: PresenceWatch | None = None
        self.draws: dict[tuple[str, int], SentDraw] = {}
        self.cursors: CursorTally | None = None
        self.typing: TypingWatch | None = None
        self.frame_types: Counter = Counter()
        self.error_codes: Counter = Counter()
        self.unmatched: Counter = Counter()  # frames with a bench mark but no expectation waiting for them
        self.echoes = 0  # draw frames a drawer got back from itself (the protocol says: never)

    # -- receiving --------------------------------------------------------------------------

    def on_frame(self, *, conn: Conn, text: str) -> None:
        now = time.time()
        conn.frames += 1
        kind = wire.frame_type(text=text)
        self.frame_types[kind] += 1
        if kind == "post.created":
            self.on_post(conn=conn, text=text, now=now)
        elif kind == "message":
            self.on_message(conn=conn, text=text, now=now)
        elif kind == "draw":
            self.on_draw(conn=conn, text=text, now=now)
        elif kind == "cursor":
            if self.cursors is not None:
                self.cursors.offer(conn=conn, text=text)
        elif kind == "typing":
            if self.typing is not None:
                self.typing.offer(conn=conn, text=text, now=now)
        elif kind == "presence":
            if self.presence is not None:
                self.presence.offer(conn=conn, text=text, now=now)
        elif kind in ("joined", "snapshot"):
            if conn.ready is not None and not conn.ready.done():
                conn.ready.set_result(now)
        elif kind == "error":
            match = wire.ERROR_CODE.search(text)
            code = match[1] if match else "?"
            conn.errors[code] += 1
            self.error_codes[code] += 1

    def mark_match(self, *, text: str, mark: re.Pattern, kind: str) -> re.Match | None:
        """The bench mark of a ``kind`` frame, when an expectation waits for it; otherwise None, and
        the frame is counted as unmatched (with no mark, or with nothing expecting it)."""
        match = mark.search(text)
        if match is None:
            self.unmatched[f"{kind}-without-mark"] += 1
        elif self.expect is None:
            self.unmatched[kind] += 1
        else:
            return match
        return None

    def on_post(self, *, conn: Conn, text: str, now: float) -> None:
        if (match := self.mark_match(text=text, mark=wire.POST_MARK, kind="post")) is not None:
            index = int(match[1])
            self.expect.record(conn=conn, key=index, bucket=str(index), latency=now - float(match[2]), now=now)

    def on_message(self, *, conn: Conn, text: str, now: float) -> None:
        if (match := self.mark_match(text=text, mark=wire.CHAT_MARK, kind="message")) is None:
            return
        if conn.room is not None and (room := wire.ROOM.search(text)) and room[1] != conn.room:
            self.expect.outsiders += 1  # a message of another room: misrouted, never a delivery
        else:
            step, number = match[1], int(match[2])
            self.expect.record(conn=conn, key=(step, number), bucket=step, latency=now - float(match[3]), now=now)

    def on_draw(self, *, conn: Conn, text: str, now: float) -> None:
        received = time.perf_counter()
        key = wire.draw_key(text=text)
        sent = self.draws.get(key) if key else None
        if sent is None or self.expect is None:
            self.unmatched["draw"] += 1
            return
        if sent.sender is conn:
            self.echoes += 1
            return
        if conn.room is not None and conn.room != sent.board:
            self.expect.outsiders += 1  # a frame of another board: misrouted, never a delivery
            return
        self.expect.record(conn=conn, key=key, bucket=sent.board, latency=received - sent.sent_at, now=now)

    def on_close(self, *, conn: Conn) -> None:
        if conn.ready is not None and not conn.ready.done():
            conn.ready.set_exception(ConnectionError(f"closed before it was ready (code {conn.close_code})"))
            conn.ready.exception()  # retrieved here, so an unawaited failure logs nothing

    # -- connections ------------------------------------------------------------------------

    async def conn_read(self, *, conn: Conn) -> None:
        try:
            async for text in conn.ws:
                if isinstance(text, str):
                    self.on_frame(conn=conn, text=text)
        except ConnectionClosed:
            pass
        except Exception:  # one broken socket must not take the client down
            logger.exception("reader of %s #%d failed", conn.group, conn.index)
        finally:
            conn.close_code = conn.ws.close_code
            self.on_close(conn=conn)

    async def conn_open(self, *, conn: Conn, opening: Opening) -> None:
        """Open the socket; with ``opening.ready`` "joined" or "snapshot" wait for that first frame.
        Raises on failure; the caller counts the reason."""
        url_check(url=conn.url)
        headers = {"Cookie": conn.cookie} if conn.cookie else None
        conn.ready = asyncio.get_running_loop().create_future() if opening.ready != "open" else None
        conn.close_code = None
        conn.ws = await connect(
            conn.url,
            origin=conn.origin,
            additional_headers=headers,
            compression=None,  # the browsers' sockets to daphne are uncompressed too
            proxy=None,  # never through a proxy from the environment: loopback only
            open_timeout=opening.open_timeout,
            ping_interval=None,  # the servers ping; the client only answers
            close_timeout=5,
            max_size=MAX_FRAME,
            max_queue=64,
        )
        conn.reader = asyncio.create_task(self.conn_read(conn=conn))
        if opening.send_join and conn.room:
            await conn.ws.send(json.dumps({"command": "join", "room": conn.room}))
        if conn.ready is not None:
            await asyncio.wait_for(asyncio.shield(conn.ready), opening.ready_timeout)

    async def conns_open(self, *, conns: list[Conn], opening: Opening) -> dict:
        """Open many sockets, at most ``opening.concurrency`` handshakes at once; the ones that fail
        are closed, counted by reason and left out of their group."""
        gate = asyncio.Semaphore(opening.concurrency)
        failures: Counter = Counter()
        started = time.monotonic()
        stop_at = started + opening.deadline

        async def one(*, conn: Conn) -> bool:
            async with gate:
                remaining = stop_at - time.monotonic()
                if remaining <= 0:
                    failures["deadline"] += 1
                    return False
                try:
                    await asyncio.wait_for(
                        self.conn_open(conn=conn, opening=opening),
                        min(remaining, opening.open_timeout + opening.ready_timeout),
                    )
                    return True
                except Exception as error:  # noqa: BLE001 - every failure is counted and reported
                    failures[failure_reason(error=error, conn=conn)] += 1
                    await conn_abort(conn=conn)
                    return False

        outcomes = await asyncio.gather(*(one(conn=conn) for conn in conns))
        opened = [conn for conn, ok in zip(conns, outcomes, strict=True) if ok]
        elapsed = time.monotonic() - started
        return {
            "requested": len(conns),
            "connected": len(opened),
            "failed": len(conns) - len(opened),
            "failures": dict(failures.most_common(8)),
            "elapsed_s": round(elapsed, 3),
            "per_second": round(len(opened) / elapsed, 1) if elapsed else None,
            "_opened": opened,
        }


def errors_sum(*, conns: list[Conn]) -> Counter:
    """The error codes the sockets were sent, added up."""
    total: Counter = Counter()
    for conn in conns:
        total.update(conn.errors)
    return total


def failure_reason(*, error: BaseException, conn: Conn) -> str:
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, TimeoutError):
        return "timeout (ready frame)" if conn.ws is not None else "timeout (handshake)"
    return f"{type(error).__name__}: {str(error)[:80]}"


async def conn_abort(*, conn: Conn) -> None:
    if conn.ws is not None:
        conn.ws.transport.abort()
    if conn.reader is not None:
        conn.reader.cancel()


async def conn_close(*, conn: Conn) -> None:
    if conn.ws is None:
        return
    try:
        await conn.ws.close()
    except Exception:  # noqa: BLE001 - closing is best effort; the transport goes anyway
        conn.ws.transport.abort()
    if conn.reader is not None:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(conn.reader, 5)
