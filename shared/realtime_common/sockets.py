"""What every WebSocket gets from the interface server, daphne, beyond ASGI.

- **A bounded backlog.** daphne (Twisted) buffers what a socket sends without
  limit: a page that stops reading (a frozen tab, a dead network whose TCP has not
  noticed yet) makes the server hold every frame of its groups. ``SocketGuard``
  looks at the bytes waiting in the socket's transport before each frame; past
  ``WEBSOCKET_SEND_BUFFER_LIMIT`` (1 MiB) it sends no more and closes the socket
  with **1013** (Try Again Later), once, and logs it. A page that is still not
  reading when its close handshake times out (1 s) is dropped (it sees 1006).
  Either way it reconnects and catches up from what it had (``since``).
- **1012 on shutdown.** When daphne stops (SIGTERM, SIGINT), it stops listening,
  and every open socket is closed with **1012** (Service Restart) before daphne
  cancels the consumers, so pages learn at once that the server is going, and
  reconnect to another one (up to 1 s is given to the closing handshakes).
- **Any close code.** Autobahn (daphne's WebSocket library) lets an application
  close only with 1000 or 3000-4999 (anything else raises inside daphne, and the
  page sees its connection dropped); a consumer may close with the RFC's server
  codes too (``RFC_SERVER_CODES``: 1009 message too big, 1013 try again later...),
  which are sent as they are.

All of it but the next point is daphne-specific.

- **A frame for a socket that has gone is dropped, on any server.** A group message can
  reach a consumer after its page left, or after the server closed the socket (a
  protocol error, a message over the limit), before the consumer has read the
  disconnect. daphne takes such a frame and drops it (``GuardedSend`` above); the ASGI
  spec lets a server raise instead, and uvicorn does (``ClientDisconnected``, an
  ``OSError``; ``RuntimeError`` once it sent the Close itself): the consumer would end
  with a traceback. Under any other server (and ``WebsocketCommunicator`` in tests)
  ``ClosedSocketSend`` drops the frame instead, and every one after it, and after the
  consumer's own close; the disconnect comes next, and the page catches up on reconnect.
"""

import logging
import os
import sys
import time
import weakref
from functools import partial

from .metrics import slow_reader_closed

logger = logging.getLogger(__name__)

# Bytes waiting to be sent on one socket beyond which it is closed as a slow reader.
SEND_BUFFER_LIMIT = int(os.environ.get("WEBSOCKET_SEND_BUFFER_LIMIT", str(1 << 20)))
CLOSE_SLOW_READER = 1013  # Try Again Later: not final, the page reconnects
CLOSE_SERVICE_RESTART = 1012
# Close codes of RFC 6455 and the IANA registry a server may send, which autobahn's
# sendClose refuses (it takes 1000 and 3000-4999 only): going away, protocol error,
# unacceptable data, invalid payload, policy violation, message too big, internal
# error, service restart, try again later, bad gateway.
RFC_SERVER_CODES = frozenset({1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 1014})
# How long a stopping daphne waits for its sockets' close handshakes before it lets
# Twisted drop the connections.
SHUTDOWN_GRACE = 1.0

# The daphne protocols of this process's open sockets, for the shutdown trigger.
OPEN: "weakref.WeakSet" = weakref.WeakSet()


def daphne_protocol(send):
    """The Twisted protocol behind an ASGI ``send`` when daphne serves it, else None.

    daphne hands each application instance ``partial(server.handle_reply, protocol)``.
    """
    if not isinstance(send, partial) or not send.args:
        return None
    server = getattr(send.func, "__self__", None)
    # Looked up, not imported: importing daphne.server installs Twisted's reactor. realtime_common.serve's is a subclass.
    daphne_server = sys.modules.get("daphne.server")
    if daphne_server is None or not isinstance(server, daphne_server.Server):
        return None
    protocol = send.args[0]
    return protocol if hasattr(protocol, "sendCloseFrame") else None


def transport_buffered(transport) -> int:
    """Bytes Twisted holds for a socket that the kernel has not taken yet."""
    # A FileDescriptor's write buffer: dataBuffer (from offset) and the pending chunks.
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:  # not a plain TCP transport (TLS wraps it): not measured
        return 0


def close_frame(protocol, code: int) -> bool:
    """Start the closing handshake with ``code``, which autobahn's sendClose may refuse."""
    if protocol.state != protocol.STATE_OPEN:
        return False
    # sendCloseFrame is autobahn's own, under sendClose, without its check of the code.
    protocol.sendCloseFrame(code=code, isReply=False)
    return True


class GuardedSend:
    """The ``send`` a socket's application gets under daphne (``SocketGuard``)."""

    # One per open socket: slots keep it to its fields, without a dict of its own.
    __slots__ = ("protocol", "send", "path", "shed")

    def __init__(self, *, protocol, send, scope):
        self.protocol = protocol
        self.send = send
        self.path = scope.get("path", "")
        self.shed = False  # closed as a slow reader: nothing more is sent

    async def __call__(self, message):
        kind = message["type"]
        if kind == "websocket.send":
            # A socket closing already (its page went away, or the server closed it) takes no
            # frame: autobahn would raise Disconnected into the consumer, which then ends with
            # a traceback. A group message may come just then; the page catches up on reconnect.
            if self.shed or self.protocol.state in (self.protocol.STATE_CLOSING, self.protocol.STATE_CLOSED):
                return
            buffered = transport_buffered(self.protocol.transport)
            if buffered > SEND_BUFFER_LIMIT:
                self.shed = True
                logger.warning(
                    "closed a slow reader on %s with %d: %d bytes were waiting to be sent (limit %d)",
                    self.path,
                    CLOSE_SLOW_READER,
                    buffered,
                    SEND_BUFFER_LIMIT,
                )
                close_frame(self.protocol, CLOSE_SLOW_READER)
                slow_reader_closed()
                return
        elif kind == "websocket.close" and message.get("code") in RFC_SERVER_CODES:
            if self.protocol.state != self.protocol.STATE_CONNECTING:
                close_frame(self.protocol, message["code"])  # nothing to do if it is closing already
                return
        await self.send(message)


class ClosedSocketSend:
    """The ``send`` a socket's application gets under any server but daphne (``SocketGuard``)."""

    __slots__ = ("send", "accepted", "closed")

    def __init__(self, *, send):
        self.send = send
        self.accepted = False
        self.closed = False  # the consumer closed, or the server said the socket has gone

    async def __call__(self, message):
        if self.closed and message["type"] in ("websocket.send", "websocket.close"):
            return
        if message["type"] == "websocket.close":
            self.closed = True
        try:
            await self.send(message)
        except (OSError, RuntimeError):
            # What a server raises for a frame to an accepted socket that has gone: an OSError by
            # the ASGI spec, a RuntimeError from uvicorn once it sent the Close. Raised for anything
            # else: a frame before the accept, say, is the consumer's bug.
            if message["type"] != "websocket.send" or not self.accepted:
                raise
            self.closed = True
        else:
            if message["type"] == "websocket.accept":
                self.accepted = True


class SocketGuard:
    """ASGI middleware around the WebSocket application (outermost: it needs the server's own ``send``)."""

    def __init__(self, application):
        self.application = application
        shutdown_trigger_install()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.application(scope, receive, send)
        protocol = daphne_protocol(send)
        if protocol is None:
            return await self.application(scope, receive, ClosedSocketSend(send=send))
        OPEN.add(protocol)
        try:
            return await self.application(scope, receive, GuardedSend(protocol=protocol, send=send, scope=scope))
        finally:
            OPEN.discard(protocol)


INSTALLED = False


def shutdown_trigger_install() -> None:
    """Under daphne, close every open socket with 1012 when the reactor stops."""
    global INSTALLED
    # Only where daphne installed its asyncio reactor: importing Twisted's reactor
    # anywhere else (a management command, a test) would install the wrong one.
    if INSTALLED or "daphne.server" not in sys.modules:
        return
    from twisted.internet import reactor

    # Registered before daphne's own trigger (at reactor start), which cancels every consumer.
    reactor.addSystemEventTrigger("before", "shutdown", sockets_close_all)
    INSTALLED = True


def sockets_close_all():
    from twisted.internet import defer, reactor
    from twisted.internet.tcp import Port

    # First stop accepting: a page reconnecting at once must reach another server, not this one.
    for reader in reactor.getReaders():
        if isinstance(reader, Port):
            reader.stopListening()
    closing = [protocol for protocol in list(OPEN) if close_frame(protocol, CLOSE_SERVICE_RESTART)]
    if not closing:
        return None
    logger.info("shutting down: closed %d WebSockets with %d (service restart)", len(closing), CLOSE_SERVICE_RESTART)
    # Twisted drops every connection right after the triggers: give the close
    # frames time to leave, the pages time to answer, and the consumers time to
    # run their disconnect() (a chat page's user leaves its rooms' presence at once).
    done = defer.Deferred()
    deadline = time.monotonic() + SHUTDOWN_GRACE

    def check():
        if time.monotonic() > deadline or not any(protocol in OPEN for protocol in closing):
            done.callback(None)
        else:
            reactor.callLater(0.02, check)

    reactor.callLater(0, check)
    return done
