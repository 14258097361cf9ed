"""What realtime_common.serve's daphne keeps for every open socket, beyond what the application
keeps (docs/scale.md, "Memory"): the connection's input queue is a LightQueue
(realtime_common.loops), which holds nothing while the socket is idle; the HTTP channel and request
that upgraded the connection are let go; autobahn's options are the factory's, not copied into each
connection. Connections are upgraded by daphne's own HTTP code, on Twisted's in-memory transport."""

import asyncio
import gc
import weakref

from daphne.http_protocol import HTTPFactory
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel

from realtime_common.loops import LightQueue
from realtime_common.serve import Server, WebSocketFactory, WebSocketProtocol

UPGRADE = (
    b"GET /ws/?memory HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
MESSAGE_LIMIT = 65536


class Protocol:
    """What create_application uses of daphne's protocol: the replies it is handed."""

    def __init__(self) -> None:
        self.replies: list[dict] = []

    def handle_reply(self, message: dict) -> None:
        self.replies.append(message)


async def test_a_connection_s_application_receives_from_a_light_queue():
    received: list[dict] = []

    async def application(*, scope, receive, send):
        received.append(await receive())
        await send({"type": "websocket.accept"})

    server = Server(application=application, endpoints=["tcp:port=0"])
    protocol = Protocol()
    server.connections = {protocol: {}}  # as daphne's protocol_connected leaves it
    queue = server.create_application(protocol, {"type": "websocket", "path": "/ws/"})
    assert type(queue) is LightQueue
    queue.put_nowait({"type": "websocket.connect"})
    async with asyncio.timeout(5):
        await server.connections[protocol]["application_instance"]
    assert received == [{"type": "websocket.connect"}]
    assert protocol.replies == [{"type": "websocket.accept"}]
    assert queue.items is None and queue.waiter is None  # read: nothing kept


def server_make() -> tuple[Server, asyncio.Event]:
    """A server as Server.run() makes it, but for listening, whose application accepts every
    socket and keeps it open; and an event set once the first socket is accepted."""
    accepted = asyncio.Event()

    async def application(*, scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        accepted.set()
        await asyncio.Future()  # open until the test ends: its event loop cancels it

    server = Server(application=application, endpoints=["tcp:port=0"])
    server.connections = {}
    server.http_factory = HTTPFactory(server)
    server.ws_factory = WebSocketFactory(server, server="daphne")
    server.ws_factory.setProtocolOptions(
        allowNullOrigin=True, openHandshakeTimeout=0, maxMessagePayloadSize=MESSAGE_LIMIT
    )
    return server, accepted


def upgrade(*, server: Server) -> tuple[StringTransport, HTTPChannel]:
    """A connection that asks for the upgrade: its transport, and the HTTPChannel that read the request."""
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 8000), peerAddress=IPv4Address("TCP", "127.0.0.1", 50000)
    )
    connection = server.http_factory.buildProtocol(transport.getPeer())
    connection.makeConnection(transport)
    channel = transport.producer  # Twisted's HTTPChannel registers itself on connecting
    assert isinstance(channel, HTTPChannel)
    connection.dataReceived(UPGRADE)
    return transport, channel


async def test_the_http_channel_and_request_that_upgraded_a_socket_are_let_go():
    server, accepted = server_make()
    transport, channel = upgrade(server=server)
    async with asyncio.timeout(5):
        await accepted.wait()
    assert transport.value().startswith(b"HTTP/1.1 101 Switching Protocols")
    assert transport.producer is None
    # daphne's application_checker, within a second: a request marked disconnected (the upgrade does) goes.
    server.connections = {
        protocol: details for protocol, details in server.connections.items() if "disconnected" not in details
    }
    channel = weakref.ref(channel)
    gc.collect()
    assert channel() is None  # nothing else held it, nor its request


async def test_connections_read_the_options_from_their_class_and_keep_those_they_were_made_with():
    server, accepted = server_make()
    transport, _ = upgrade(server=server)
    async with asyncio.timeout(5):
        await accepted.wait()
    protocol = transport.protocol
    assert isinstance(protocol, WebSocketProtocol)
    assert not set(vars(protocol)) & set(WebSocketProtocol.CONFIG_ATTRS)  # none copied into the connection
    assert protocol.maxMessagePayloadSize == MESSAGE_LIMIT and protocol.failByDrop is False
    assert protocol.perMessageCompressionAccept([]) is None  # a function, called with the offers alone
    server.ws_factory.setProtocolOptions(maxMessagePayloadSize=1024)
    later, _ = upgrade(server=server)
    assert later.protocol.maxMessagePayloadSize == 1024
    assert protocol.maxMessagePayloadSize == MESSAGE_LIMIT
