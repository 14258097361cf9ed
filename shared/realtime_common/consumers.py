"""JSON WebSocket consumers that answer bad input with an error frame instead of
crashing, and relay group frames without per-recipient work.

Channels' JSON consumers raise on a frame that is not JSON, or binary: the
connection dies and the client learns nothing. These send
``{"type": "error", "code": ..., "detail": ...}`` and keep the connection open;
``receive_json`` only ever sees a JSON object.

**Limits.** Every socket has a frame rate (``frame_rate``, ``frame_burst``):
over it a frame is refused with ``rate_limited``; a page that keeps going is
closed with 4429. A consumer whose socket only sends sets ``read_only_detail``.
Anything under ``receive_json`` refuses a frame by raising ``ClientError``.

**Heartbeat.** A page sends ``{"type": "ping"}`` when its socket has been quiet
for a while (``JsonSocket``), to notice a connection that died without a close
(a network change, a laptop that slept). Every socket, read-only ones too,
answers ``{"type": "pong"}`` here, before ``receive_json``: no site handles it,
and it touches no database (the sync base answers it from the event loop, not
from the ORM's thread). It counts against the frame rate like any frame.

**Relayed frames.** A group message made by ``relay_message`` carries its frame
already encoded. Every consumer in the group sends that text to its page from
the event loop: the frame is encoded once for the whole group, not once per
recipient, and no handler, thread hop or database work runs per recipient.
Under the pub/sub layer every member gets a copy of one decoded message, whose
values are shared: a handler may add, drop or replace its message's keys, but
must not change a nested value (a list, a dict) in place, which every other
member of the group would see too.

**Dispatch.** Both bases run Channels' steps of a consumer with a loop of their own over its
messages (``MessagesLoop``, realtime_common.loops.messages_dispatch): Channels' guarantees
(order, one message at a time, errors, the disconnect), without a task and an ``asyncio.wait``
per message.

**Faults.** A frame whose handling finds the database busy or locked past its
timeout (``OperationalError``) is answered with the error ``busy``; one that
needs Redis while it is away, with ``unavailable``. Either way the socket stays
open, and the services' transactions saw to it that nothing was half written.
After a Redis outage the pub/sub layer sends every consumer ``layer.reconnected``
(``layer_reconnected``): group messages may have been lost meanwhile, so a
consumer that can catches its page up (``StreamConsumer`` does).

**Metrics.** Every socket counts its handshake, its frames in and out, its error
frames by code and its close by code (``SocketMetrics``, realtime_common.metrics).
"""

import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import OperationalError

from .layers import REDIS_DOWN, error_text
from .loops import messages_dispatch
from .metrics import SocketMeter
from .throttle import TokenBucket

logger = logging.getLogger(__name__)

RELAY = "frame.relay"
# In 4400-4499, which pages treat as final: a flooding page does not reconnect.
CLOSE_FLOODING = 4429
# The largest frame a page may send. daphne refuses bigger ones itself, with 1009, as
# realtime_common.serve runs it (Procfile, docker/start, the test servers); this holds
# under any server, e.g. plain daphne, whose limit is 1 MiB.
FRAME_MAX_BYTES = 64 * 1024
# Message too big: the standard close code.
CLOSE_TOO_BIG = 1009
# After a page's frames went over its rate: this many refusals, one more allowed each second, then the close.
REFUSALS_PER_SECOND, REFUSAL_BURST = 1, 20


def error_frame(*, code: str, detail: str) -> dict:
    return {"type": "error", "code": code, "detail": detail}


def frame_encode(*, frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))


def relay_message(*, frame: dict, skip: str | None = None) -> dict:
    """A group message that every consumer of the group, except the channel ``skip``, sends to its page as is."""
    return {"type": RELAY, "text": frame_encode(frame=frame), "skip": skip}


async def relay_send(*, message: dict, channel_name: str, send) -> None:
    if message["skip"] != channel_name:
        await send({"type": "websocket.send", "text": message["text"]})


class ClientError(Exception):
    """Refuses the frame being handled: raised anywhere under receive_json (a
    wire.py parser, a check in the consumer), it becomes one error frame, and
    the socket stays open. ``client_id``, the page's own id of the command
    refused (when it gave one), goes back in the frame: the page then knows
    which of its commands to give back to its user."""

    def __init__(self, code: str, detail: str, *, client_id: str | None = None):
        super().__init__(detail)
        self.code, self.detail, self.client_id = code, detail, client_id

    def frame(self) -> dict:
        frame = error_frame(code=self.code, detail=self.detail)
        return frame if self.client_id is None else {**frame, "client_id": self.client_id}


def fault_frame(error: Exception) -> dict | None:
    """The error frame for a fault of the database or of Redis met while handling
    a page's frame; None for anything else (a bug: let it raise)."""
    if isinstance(error, OperationalError):
        # A lock waited for past DJANGO_DATABASE_TIMEOUT (SQLite's "database is locked",
        # Postgres' lock_timeout), or any other failure of the database itself: the
        # transaction was rolled back.
        logger.warning("refused a frame: the database failed (%s)", error)
        return error_frame(code="busy", detail="The server is busy: nothing was saved. Try again in a moment.")
    if isinstance(error, REDIS_DOWN):
        logger.warning("refused a frame: Redis is unavailable (%s)", error_text(error))
        return error_frame(code="unavailable", detail="The server cannot reach Redis right now. Try again in a moment.")
    return None


class Flooding(Exception):
    """The socket keeps sending past its frame rate: close it (once) with CLOSE_FLOODING."""

    def __init__(self, *, first: bool):
        super().__init__("flooding")
        self.first = first


class Oversized(Exception):
    """A frame over FRAME_MAX_BYTES: close the socket with CLOSE_TOO_BIG."""


class Ping(Exception):
    """The page's heartbeat: answer PONG_TEXT, and nothing else."""


# The heartbeat, and its answer encoded once for every socket.
PING = {"type": "ping"}
PONG_TEXT = frame_encode(frame={"type": "pong"})
# Longer than any spacing of PING that an encoder writes: a longer frame is not parsed to look for it.
PING_MAX_CHARS = 32


def frame_is_ping(*, text_data: str | None) -> bool:
    """Is this frame the heartbeat? Compared as JSON, so that any client's encoder will do;
    only a frame this short is parsed here, which costs next to nothing."""
    if text_data is None or len(text_data) > PING_MAX_CHARS:
        return False
    try:
        return json.loads(text_data) == PING
    except ValueError:
        return False


def frame_size(*, text_data: str | None, bytes_data: bytes | None) -> int:
    if text_data is None:
        return len(bytes_data or b"")
    # A character is 1 to 4 bytes in UTF-8: encode only when the count alone cannot tell.
    return len(text_data) if len(text_data) * 4 <= FRAME_MAX_BYTES else len(text_data.encode())


class FrameGuard:
    """Every socket's limit on what its page sends: ``rate`` frames a second on
    average, in bursts of up to ``burst``. A frame over it is refused with
    rate_limited; after REFUSAL_BURST refusals (one more allowed each second)
    the socket is closed with CLOSE_FLOODING, and what still arrives is ignored."""

    def __init__(self, *, rate: float, burst: int):
        self.frames = TokenBucket(rate=rate, burst=burst)
        self.refusals = TokenBucket(rate=REFUSALS_PER_SECOND, burst=REFUSAL_BURST)
        self.flooded = False

    def admit(self) -> None:
        if self.flooded:
            raise Flooding(first=False)
        if self.frames.take():
            return
        if self.refusals.take():
            raise ClientError("rate_limited", "Too many frames: slow down.")
        self.flooded = True
        raise Flooding(first=True)


def unstorable_text_in(content) -> bool:
    """Does any string in the JSON ``content`` (key or value) hold a lone surrogate,
    or NUL (U+0000), which Postgres stores in no text column and no jsonb?"""
    pending = [content]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value or any("\ud800" <= character <= "\udfff" for character in value):
                return True
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def frame_receive(
    *, guard: FrameGuard, read_only_detail: str | None, text_data: str | None, bytes_data: bytes | None
) -> dict:
    """The frame as a JSON object, once it passed the socket's limits; Ping for the heartbeat;
    ClientError, Flooding or Oversized otherwise."""
    if frame_size(text_data=text_data, bytes_data=bytes_data) > FRAME_MAX_BYTES:
        raise Oversized
    guard.admit()
    # Before read_only: a socket that only sends still tells its page that it is alive.
    if frame_is_ping(text_data=text_data):
        raise Ping
    if read_only_detail is not None:
        raise ClientError("read_only", read_only_detail)
    if text_data is None:
        raise ClientError("binary_frame", "Send JSON in text frames, not binary ones.")
    try:
        content = json.loads(text_data)
    except ValueError:
        raise ClientError("bad_json", "The frame is not valid JSON.") from None
    except RecursionError:  # thousands of nested brackets: the parser gives up, deep in the stack
        raise ClientError("bad_json", "The frame is nested too deeply.") from None
    # A text frame is valid UTF-8, and JSON takes no raw control characters, but its \u
    # escapes can still spell a lone surrogate, which no database or encoder downstream
    # accepts, or NUL, which Postgres does not (SQLite would): refused on both alike.
    if "\\u" in text_data and unstorable_text_in(content):
        raise ClientError(
            "bad_json", "The frame holds text that cannot be stored: a lone surrogate or a NUL character."
        )
    if not isinstance(content, dict):
        raise ClientError("bad_frame", "The frame must be a JSON object.")
    return content


class FrameLimits:
    """What the two consumer bases share: the limits on what a page sends."""

    # Frames a page may send, a second on average and in a burst; sites raise them per socket.
    frame_rate, frame_burst = 20, 40
    # The detail of the read_only error every frame gets, on a socket that only sends.
    read_only_detail: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frame_guard = FrameGuard(rate=self.frame_rate, burst=self.frame_burst)

    def frame_content(self, *, text_data: str | None, bytes_data: bytes | None) -> dict:
        """The frame as a JSON object, within this socket's limits (``frame_receive``).
        The sync and the async base each handle what it raises, with their own calls."""
        return frame_receive(
            guard=self.frame_guard, read_only_detail=self.read_only_detail, text_data=text_data, bytes_data=bytes_data
        )


def send_deferred(*, send: Callable[[dict], Awaitable[None]]) -> Callable[[dict], Awaitable[None]]:
    """``send`` as a coroutine function: called from a thread, it runs nothing until the event loop awaits it."""

    async def deferred(message: dict) -> None:
        await send(message)

    return deferred


class SocketMetrics:
    """What the two consumer bases share: the socket's metrics (realtime_common.metrics).
    Its ASGI ``receive`` and ``send`` are counted where every message passes, whatever
    code sends (a handler, a relayed frame, the heartbeat's answer, a mixin's lists),
    and its open socket is counted closed however the consumer ends, raising included.
    ``async_send`` is the counted ``send``: Channels keeps only a sync wrapper of it
    (base_send) for sync consumers, whose event loop sends go through this one."""

    async def __call__(self, scope, receive, send):
        self.meter = SocketMeter(consumer=type(self).__name__)
        if self.meter.on:
            receive, send = self.meter.receive_counted(receive), self.meter.send_counted(send)
        self.async_send = send
        if self.meter.on and self._sync:
            # Channels gives a sync consumer's handlers async_to_sync(send), which calls ``send`` in
            # their thread and awaits what it returns in the event loop: behind a coroutine, the
            # counting runs in the event loop too, where a socket's counts are written.
            send = send_deferred(send=send)
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            self.meter.ended(crashed=True)
            raise
        finally:
            self.meter.ended(crashed=False)


class MessagesLoop:
    """What the two consumer bases share: Channels' ``AsyncConsumer.__call__``, the same steps
    (the channel layer, the consumer's channel, ``base_send``; StopConsumer ends it cleanly),
    with messages_dispatch (realtime_common.loops) in place of Channels' ``await_many_dispatch``,
    which makes a task and an ``asyncio.wait`` per message: one long-lived task per source
    instead, and every message still dispatched in the consumer's own task. A layer with
    ``channel_push`` (our pub/sub layer) hands the channel's messages over as they come, with
    no task reading them (messages_dispatch's pushed sources).

    One step more than Channels': the consumer releases its channel when it ends, however it
    ends, with its layer's ``channel_release`` (ours have it: realtime_common.layers). Channels
    relies on the layer's receive, cancelled, to clean up; here the layer's task may be waiting
    with two messages out instead, and without this the pub/sub layer kept the channel and its
    Redis subscription, and the core layer refreshed a crashed consumer's groups, for good.
    The in-memory layer needs none: what is left in its channel expires."""

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources, pushed = [receive], []
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            if (push := getattr(self.channel_layer, "channel_push", None)) is not None:
                pushed.append(functools.partial(push, self.channel_name))
            else:
                sources.append(functools.partial(self.channel_layer.receive, self.channel_name))
        self.base_send = async_to_sync(send) if self._sync else send
        try:
            with contextlib.suppress(StopConsumer):
                await messages_dispatch(sources=sources, dispatch=self.dispatch, pushed=pushed)
        finally:
            if (release := getattr(self.channel_layer, "channel_release", None)) is not None:
                await release(self.channel_name)


class SafeJsonWebsocketConsumer(SocketMetrics, MessagesLoop, FrameLimits, JsonWebsocketConsumer):
    """The sync consumer: handlers run in the one thread Django's ORM uses (one
    at a time for all sync consumers of a process), except relayed frames and
    the heartbeat, which are answered from the event loop and never queue
    behind that thread."""

    async def dispatch(self, message):
        if message["type"] == RELAY:
            await relay_send(message=message, channel_name=self.channel_name, send=self.async_send)
            return
        # Behind the ORM's thread, a slow or locked database would hold every pong
        # past the page's patience, and make its idle pages reconnect for nothing.
        if message["type"] == "websocket.receive" and frame_is_ping(text_data=message.get("text")):
            await self.ping_answer()
            return
        await super().dispatch(message)

    async def ping_answer(self) -> None:
        """The heartbeat's answer, within the socket's frame rate, as ``receive`` would give it."""
        try:
            self.frame_guard.admit()
        except ClientError as error:
            self.meter.error_frame(code=error.code)
            await self.async_send({"type": "websocket.send", "text": frame_encode(frame=error.frame())})
        except Flooding as flooding:
            if flooding.first:
                await self.async_send({"type": "websocket.close", "code": CLOSE_FLOODING})
        else:
            await self.async_send({"type": "websocket.send", "text": PONG_TEXT})

    def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = self.frame_content(text_data=text_data, bytes_data=bytes_data)
            self.receive_json(content, **kwargs)
        except ClientError as error:
            self.send_json(error.frame())
        except Flooding as flooding:
            if flooding.first:
                self.close(code=CLOSE_FLOODING)
        except Oversized:
            self.close(code=CLOSE_TOO_BIG)
        except Exception as error:
            if (frame := fault_frame(error)) is None:
                raise
            self.send_json(frame)

    def layer_reconnected(self, message):
        """Redis is back after an outage: group messages may have been lost. Override to catch the page up."""

    def send_json(self, content, close=False):
        self.meter.json_sent(content)
        super().send_json(content, close)

    @classmethod
    def encode_json(cls, content):
        return frame_encode(frame=content)


class AsyncSafeJsonWebsocketConsumer(SocketMetrics, MessagesLoop, FrameLimits, AsyncJsonWebsocketConsumer):
    """The async consumer. Reach the database only through
    ``channels.db.database_sync_to_async``, which closes stale connections
    around each call, as Django does around each request."""

    async def dispatch(self, message):
        # Channels' own dispatch runs close_old_connections() in the ORM's
        # thread before every handler: one thread hop per message, queued
        # behind every other consumer of the process, even for group messages
        # that never touch the database. database_sync_to_async does that
        # cleanup where the database is actually used.
        if message["type"] == RELAY:
            await relay_send(message=message, channel_name=self.channel_name, send=self.base_send)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = self.frame_content(text_data=text_data, bytes_data=bytes_data)
            await self.receive_json(content, **kwargs)
        except Ping:
            await self.send(text_data=PONG_TEXT)
        except ClientError as error:
            await self.send_json(error.frame())
        except Flooding as flooding:
            if flooding.first:
                await self.close(code=CLOSE_FLOODING)
        except Oversized:
            await self.close(code=CLOSE_TOO_BIG)
        except Exception as error:
            if (frame := fault_frame(error)) is None:
                raise
            await self.send_json(frame)

    async def layer_reconnected(self, message):
        """Redis is back after an outage: group messages may have been lost. Override to catch the page up."""

    async def send_json(self, content, close=False):
        self.meter.json_sent(content)
        await super().send_json(content, close)

    @classmethod
    async def encode_json(cls, content):
        return frame_encode(frame=content)
