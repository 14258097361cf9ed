"""daphne as every site runs it: ``python -m realtime_common.serve [daphne's options] config.asgi:application``.

The Procfile, ``docker/start`` and the test servers all start this, not ``daphne``, for
one thing: a page that sends a frame over FRAME_MAX_BYTES (64 KiB), of any size, gets a
Close frame with **1009** (message too big), not a dropped connection; while what the
server sends is not held to that limit.

- The limit is FRAME_MAX_BYTES, set here so that no command line can leave it out
  (daphne's own default is 1 MiB). A ``--websocket-max-message-size`` given on the
  command line comes later, so it wins.
- autobahn, daphne's WebSocket implementation, fails a connection by dropping TCP unless
  told otherwise (its ``failByDrop`` option, on by default; daphne has no flag for it).
  The page would see 1006, as on a network failure, and send the same frame again once
  it reconnects. Here autobahn sends the Close frame first: 1009 for a message over the
  limit, 1002 or 1007 for a protocol violation. It decides on a frame's header and reads
  the rest of an oversized frame without keeping it, so a 2 MiB frame takes no more
  memory than a 64 KiB one.
- autobahn holds what the server sends to the same limit (daphne's flag too): over it,
  the message would be lost with an error in the log. The sites' own frames (a board's
  snapshot, a room's history) can be bigger, and are bounded by the sites (docs/security.md,
  "the largest frames the server sends"): here nothing holds them back.
- Every endpoint listens with a backlog of LISTEN_BACKLOG connections not yet accepted, not
  Twisted's 50: when thousands of pages reconnect at once (a deploy, a network blip), a
  full backlog drops their SYNs, and each waits a second or more to retry. The kernel caps
  it at net.core.somaxconn (4096 on Linux since 5.4). A ``backlog=`` in an ``--endpoint``
  wins.
- A frame is written to the socket at once, when nothing waits before it. Twisted only
  buffers a write and asks the event loop to watch the socket for writability; the send
  happens on the loop's next turn, and the watch is removed after it (twisted#5303, open
  since 2011; neither Twisted nor daphne has an option for it). Under Twisted's asyncio
  reactor that is two epoll changes and two more callbacks, each in Twisted's logging
  context, for every frame: a liveblog frame took 247,000 CPU instructions with it and
  159,000 without (one daphne under callgrind, 200 sockets). asyncio's own transports send
  at once, and so does ``TCPTransport``. What the kernel does not take (its send buffer is
  full: the page reads slowly) goes through Twisted's write as before: buffered, the
  socket watched, a streaming producer paused past Twisted's buffer size, and counted by
  the slow-reader guard (realtime_common.sockets). A send that fails (the page has gone)
  goes there too, and Twisted closes the connection the usual way on the loop's next turn.
  Only TCP connections take the shortcut (unix sockets keep Twisted's own write). Under an
  ``ssl:`` endpoint, Twisted's TLS layer writes the encrypted bytes through it, in order; the
  slow-reader guard then sees no buffer (the protocol's transport is the TLS layer): put TLS
  in front, in nginx, as docker-compose.yml does. A connection that started TLS itself
  (startTLS) keeps Twisted's own write.
- A text message is framed here, not by autobahn, when autobahn would add nothing to it (the
  socket open, no compression, fragmentation, masking or frame logging, and nothing queued by
  autobahn before it): two header bytes (four or ten for a long one) and the UTF-8, written as
  one. autobahn's three calls (sendMessage, sendFrame, sendData) check their arguments' types,
  update its traffic counters (which nothing here reads, and which no longer count these frames)
  and build a debug line's call for every frame: a chat user's join and close told to 200 sockets
  took 55.7 million CPU instructions with them and 48.3 million without (one daphne under
  callgrind). Binary frames, and every other case, go through autobahn as before.
- What an open socket keeps is trimmed (docs/scale.md, "Memory"): its input queue, from which
  its application receives, is a LightQueue (realtime_common.loops), not daphne's
  asyncio.Queue; the HTTP channel and request that upgraded it are let go; autobahn's options
  are read from the protocol's class, not copied into each connection.
- autobahn's debug log lines are formatted only when one is written. autobahn builds their
  arguments whatever the log level: for every frame it sends and every read, values coloured
  for a terminal (``hltype``, ``hlval``; through click when it is installed), for every
  handshake a ``pformat`` of its 35 options. Those were 27 % of a liveblog frame's CPU instructions
  (154,600 against 113,100 without; one daphne under callgrind, 200 sockets, click
  installed) and 6.5 % of a handshake's. The lines, when written, are the same but uncoloured.
- A handshake has HANDSHAKE_TIMEOUT (30 s), not daphne's 5 s, to be accepted by its
  application. Past it daphne drops the connection without an answer, the page tries again,
  and the application still completes the handshake it was given: on a machine short of CPU,
  a storm of reconnects then multiplies itself (docs/reliability.md, "A storm of handshakes").
  Under nginx's 60 s proxy timeout, so that nginx never answers 504 first. A
  ``--websocket_connect_timeout`` given on the command line wins.
- Python's cyclic garbage collector looks at its youngest objects every GC_YOUNG_THRESHOLD
  net allocations, not every 700 (CPython 3.11 to 3.13; 3.14's incremental collector reads the
  thresholds otherwise). A socket server holds many objects per open socket; at 700, the
  short-lived ones of a frame or a handshake (futures, tasks, a message in flight) are caught
  alive, moved on to the oldest generation, and counted there once dead too: when it has grown
  by a quarter, the next full collection walks every socket's objects. Every level now runs some
  70 times less often. In a reconnect storm of 2,000 chat sockets on one daphne, the event
  loop's CPU went from 6.8-7.7 s to 5.4-6.0 s (5.0-5.6 s with the collector off), and the room
  settled within 9.0-9.8 s, not 10.8-11.8. The collector still runs: cycles are freed, later;
  the idle memory per socket stayed 1.74-1.79 times the bare server's (bench, ``--only idle``).
  uvicorn and granian, started as they are, keep Python's default.
"""

import asyncio
import gc
import pprint
import sys
from functools import partial
from types import FunctionType

from autobahn.twisted import websocket as autobahn_twisted
from autobahn.websocket import protocol as autobahn_protocol
from daphne import server, ws_protocol
from daphne.cli import CommandLineInterface
from twisted.internet import tcp

from .consumers import FRAME_MAX_BYTES
from .loops import LightQueue

LISTEN_BACKLOG = 4096
# Seconds a WebSocket handshake has to be accepted by its application (daphne's default: 5).
HANDSHAKE_TIMEOUT = 30
# Twisted's listening endpoints that take a backlog= option.
BACKLOG_KINDS = ("tcp", "tcp6", "ssl", "unix")


class WebSocketProtocol(ws_protocol.WebSocketProtocol):
    def connectionMade(self) -> None:
        # daphne makes this protocol for a connection whose HTTP request asked for the upgrade,
        # and hands it the transport; the HTTPChannel that read that request stays registered as
        # the transport's producer, and with it the request (its headers, its body's buffer):
        # 3.4 KB kept for the socket's life by a producer with nothing left to pause or resume
        # (its request never finishes, and streams nothing). autobahn unregisters it when the
        # connection drops; here it goes at once.
        self.transport.unregisterProducer()
        super().connectionMade()

    def serverSend(self, content, binary=False) -> None:
        if (
            binary
            or self.state != self.STATE_OPEN  # daphne's accepts first, autobahn's refuses
            or self._perMessageCompress is not None
            or self.autoFragmentSize
            or self.maskServerFrames
            or self.send_queue  # frames queued by autobahn go first
            or self.logFrames
            or self.logOctets
            or self.trackedTimings
        ):
            self.message_send(content, binary)
            return
        payload = content.encode("utf8")
        self.transport.write(text_frame_header(length=len(payload)) + payload)

    def message_send(self, content, binary) -> None:
        # The limit is on what the page sends: lifted while the server sends (one thread, the reactor's).
        own = "maxMessagePayloadSize" in self.__dict__  # else read from the class (WebSocketFactory)
        limit, self.maxMessagePayloadSize = self.maxMessagePayloadSize, 0
        try:
            super().serverSend(content, binary)
        finally:
            if own:
                self.maxMessagePayloadSize = limit
            else:
                del self.maxMessagePayloadSize  # the class's again: no copy kept per connection


def text_frame_header(*, length: int) -> bytes:
    """A server's whole text frame's header (RFC 6455, 5.2): FIN and opcode 1, no mask, the payload's length."""
    if length <= 125:
        return bytes((0x81, length))
    if length <= 0xFFFF:
        return bytes((0x81, 126)) + length.to_bytes(2, "big")
    return bytes((0x81, 127)) + length.to_bytes(8, "big")


class WebSocketFactory(server.WebSocketFactory):
    """daphne's factory, with autobahn's defaults but one: fail a connection with a Close frame;
    and whose options its connections share rather than copy.

    autobahn copies the factory's options (29 for a server) into every connection as it is made,
    so that a later change of the factory's leaves open connections as they were, and skips
    those the protocol's class has: a connection's attributes took 3.3 KB, 1.7 KB less without
    them. Here each change of the options makes a protocol class that holds them: a connection
    reads them from its class, and one made before a change keeps the class it was made with.
    Nothing changes them per connection (serverSend lifts the message limit for a moment, on
    the connection itself, then reads it from the class again)."""

    protocol = WebSocketProtocol

    def resetProtocolOptions(self) -> None:
        super().resetProtocolOptions()
        self.failByDrop = False
        self.protocol_options_share()

    def setProtocolOptions(self, **options) -> None:
        super().setProtocolOptions(**options)
        self.protocol_options_share()

    def protocol_options_share(self) -> None:
        # The protocol class this factory's class names (a subclass may name its own), never one made here.
        base = type(self).protocol
        options = {}
        for name in base.CONFIG_ATTRS:
            value = getattr(self, name)
            # A function in a class becomes a method of each instance (given it as its first
            # argument): perMessageCompressionAccept is called with the offers alone.
            options[name] = staticmethod(value) if isinstance(value, FunctionType) else value
        self.protocol = type(base.__name__, (base,), options)


def endpoint_with_backlog(*, endpoint: str) -> str:
    """A Twisted endpoint description, with ``backlog=LISTEN_BACKLOG`` if it listens and sets none."""
    kind, _, options = endpoint.partition(":")
    if kind not in BACKLOG_KINDS or "backlog=" in options:
        return endpoint
    return f"{endpoint}:backlog={LISTEN_BACKLOG}"


class Server(server.Server):
    def __init__(self, *, endpoints, **kwargs):
        super().__init__(endpoints=[endpoint_with_backlog(endpoint=endpoint) for endpoint in endpoints], **kwargs)

    def create_application(self, protocol, scope):
        """daphne's, step for step, but for the connection's input queue: a LightQueue, not an
        asyncio.Queue (3.3 KB held by every open socket, idle or not, for a bound and a ``join``
        that daphne never uses). daphne only puts into it (``put_nowait``, from its protocols) and
        the application only reads it (``receive``, one task): all a LightQueue does. daphne makes
        the queue inside this method, with no hook of its own for it."""
        assert "application_instance" not in self.connections[protocol]
        input_queue = LightQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope,
            receive=input_queue.get,
            send=partial(self.handle_reply, protocol),
        )
        # The connection closed meanwhile (daphne's check, after the application was made).
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance,
            loop=asyncio.get_event_loop(),
        )
        return input_queue


class TCPTransport(tcp.Server):
    """Twisted's TCP server connection, sending a write at once when nothing waits before it."""

    def write(self, data: bytes) -> None:
        if (
            self.TLS  # what is written goes through TLS first
            or not self.connected
            or self.disconnecting  # closing once the buffer is out: Twisted's write decides
            or self._writeDisconnecting  # half-closed, or about to be
            or self._writeDisconnected
            or self._aborting  # abortConnection() under way: Twisted drops what is written
            or len(self.dataBuffer) != self.offset  # bytes wait in the buffer: these go behind them
            or self._tempDataLen
            # A pull producer is asked for more by Twisted's doWrite, once the buffer is out.
            or (self.producer is not None and not self.streamingProducer)
            or not isinstance(data, bytes)  # Twisted's write refuses it
        ):
            return super().write(data)
        sent = self.writeSomeData(data)
        if not isinstance(sent, int):  # the connection is lost: Twisted's doWrite meets it again, and closes
            sent = 0
        if sent < len(data):  # the kernel's send buffer is full (or the write failed): Twisted buffers the rest
            super().write(data[sent:] if sent else data)


class ServerCommandLine(CommandLineInterface):
    server_class = Server


def debug_value(value):
    """An argument of autobahn's debug lines, as it is: formatted only if a line is written."""
    return value


class DebugPretty:
    """``pformat(value)`` for autobahn's debug lines, made only if a line is written."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __str__(self) -> str:
        return pprint.pformat(self.value)


def autobahn_debug_lazy() -> None:
    """autobahn's debug lines formatted only when written (the module's docstring says why): the
    send path's (autobahn.websocket.protocol) and the receive path's (autobahn.twisted.websocket)."""
    for module in (autobahn_protocol, autobahn_twisted):
        module.hltype = module.hlval = debug_value
    autobahn_protocol.pformat = DebugPretty
    # The one pformat of that module that is not a debug line's: Timings (trackTimings) is a str.
    autobahn_protocol.Timings.__str__ = timings_text


def timings_text(timings) -> str:
    return pprint.pformat(timings._timings)


def daphne_arguments(*, argv: list[str]) -> list[str]:
    """daphne's command line: the sites' defaults first, so that ``argv`` (later) wins."""
    return [
        *("--websocket-max-message-size", str(FRAME_MAX_BYTES)),
        *("--websocket_connect_timeout", str(HANDSHAKE_TIMEOUT)),
        *argv,
    ]


# Allocations between two collections of the youngest generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def main() -> None:
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    # daphne's Server builds its factory from this module's name, with no option or hook for failByDrop.
    server.WebSocketFactory = WebSocketFactory
    # Every TCP endpoint's Port makes its connections from this class attribute (ssl: too; unix: has its own).
    tcp.Port.transport = TCPTransport
    autobahn_debug_lazy()
    ServerCommandLine().run(daphne_arguments(argv=sys.argv[1:]))


if __name__ == "__main__":
    main()
