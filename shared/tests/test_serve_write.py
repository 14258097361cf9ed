"""realtime_common.serve's TCPTransport, on a real TCP connection on 127.0.0.1 watched by a
Twisted asyncio reactor of the test's own event loop: a write is sent at once when nothing waits,
and what the kernel does not take is Twisted's again (buffered, watched, counted by the slow-reader
guard), in order; a write to a page that has gone closes the connection as Twisted would; a pull
producer and a TLS connection keep Twisted's own write."""

import asyncio
import socket
import ssl
import struct
from collections import deque
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from autobahn.websocket.protocol import WebSocketProtocol
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.interfaces import IPullProducer
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.protocols import tls
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from zope.interface import implementer

from realtime_common.serve import TCPTransport, text_frame_header
from realtime_common.serve import WebSocketProtocol as ServeWebSocketProtocol
from realtime_common.sockets import CLOSE_SLOW_READER, SEND_BUFFER_LIMIT, GuardedSend, transport_buffered

# The smallest kernel buffers Linux allows (it doubles them): the kernel takes a few KB of a write, not 100.
SMALL_BUFFER = 4096
# Room in the kernel for Twisted's largest single send (SEND_LIMIT, 128 KiB) and more.
LARGE_BUFFER = 1 << 20


class Recorder(Protocol):
    def __init__(self) -> None:
        self.lost = asyncio.Event()

    def connectionLost(self, reason) -> None:
        self.lost.set()


@pytest.fixture
async def reactor():
    """A Twisted reactor on the test's running event loop, counting the times a socket is watched for writing."""
    reactor = AsyncioSelectorReactor(asyncio.get_running_loop())
    reactor.writers_added = 0
    add_writer = reactor.addWriter

    def counting(writer) -> None:
        reactor.writers_added += 1
        add_writer(writer)

    reactor.addWriter = counting
    yield reactor
    reactor.removeAll()
    reactor.removeReader(reactor.waker)
    reactor.waker.connectionLost(None)


@pytest.fixture
def connection(reactor):
    """Make (transport, page): the server side a TCPTransport, the page a plain non-blocking socket."""
    made = []

    def connection_make(*, buffer: int) -> tuple[TCPTransport, socket.socket]:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            page = socket.socket()
            page.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)  # before connecting: sets the window
            page.connect(listener.getsockname())
            accepted, address = listener.accept()
        accepted.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
        page.setblocking(False)
        port = SimpleNamespace(_realPortNumber=0)  # the listening Port, of which the transport's repr shows the number
        transport = TCPTransport(accepted, Recorder(), address, port, 0, reactor)
        transport.protocol.makeConnection(transport)
        made.append((transport, accepted, page))
        return transport, page

    yield connection_make
    for transport, accepted, page in made:
        transport.stopReading()  # before its socket closes: the event loop's selector looks the socket up
        transport.stopWriting()
        accepted.close()
        page.close()


async def received(*, page: socket.socket, size: int) -> bytes:
    """What the page reads until it has ``size`` bytes; the event loop runs Twisted's writes meanwhile."""
    chunks, count = [], 0
    while count < size:
        chunk = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(page, 1 << 16), timeout=10)
        assert chunk, "the connection closed early"
        chunks.append(chunk)
        count += len(chunk)
    return b"".join(chunks)


async def test_a_write_with_nothing_waiting_is_sent_at_once_without_watching_the_socket(reactor, connection):
    transport, page = connection(buffer=LARGE_BUFFER)
    transport.write(b"frame one")
    transport.write(b"frame two")
    # Sent before the event loop ran again: nothing left in Twisted's buffer, the socket never watched.
    assert transport_buffered(transport) == 0
    assert await received(page=page, size=18) == b"frame oneframe two"
    assert reactor.writers_added == 0


async def test_what_the_kernel_does_not_take_is_buffered_watched_and_sent_in_order(reactor, connection):
    transport, page = connection(buffer=SMALL_BUFFER)
    data = bytes(range(256)) * 400  # 100 KB, under Twisted's SEND_LIMIT: only the kernel stops it
    transport.write(data)
    # The kernel took part of it at once; the rest waits in Twisted's buffer, the socket watched.
    assert 0 < transport_buffered(transport) < len(data)
    assert reactor.writers_added == 1
    assert await received(page=page, size=len(data)) == data
    # The write that sent the last bytes stopped watching the socket.
    assert transport_buffered(transport) == 0
    assert transport not in reactor.getWriters()


async def test_a_write_while_bytes_wait_goes_behind_them(reactor, connection):
    transport, page = connection(buffer=LARGE_BUFFER)
    # Over SEND_LIMIT: one send takes 128 KiB, the rest waits although the kernel has room.
    first = b"a" * (transport.SEND_LIMIT + 50_000)
    transport.write(first)
    waiting = transport_buffered(transport)
    assert 0 < waiting < len(first)
    transport.write(b"tail")
    assert transport_buffered(transport) == waiting + len(b"tail")
    assert await received(page=page, size=len(first) + 4) == first + b"tail"


async def test_a_write_while_a_partly_sent_buffer_waits_goes_behind_it(reactor, connection):
    transport, page = connection(buffer=SMALL_BUFFER)
    wrote = asyncio.Event()
    do_write = transport.doWrite

    def write_noted():  # what the reactor calls once the socket is writable
        result = do_write()
        wrote.set()
        return result

    transport.doWrite = write_noted
    data = bytes(range(256)) * 400
    transport.write(data)
    # The page reads a little: Twisted's doWrite sends some more and keeps the rest in dataBuffer, from offset.
    head = await received(page=page, size=1)
    await asyncio.wait_for(wrote.wait(), timeout=10)
    assert transport._tempDataLen == 0 and 0 < len(transport.dataBuffer) - transport.offset
    middle = page.recv(1 << 16)  # room in the kernel again, the event loop not run: the buffer still waits
    waiting = transport_buffered(transport)
    transport.write(b"tail")
    assert transport_buffered(transport) == waiting + len(b"tail")
    rest = await received(page=page, size=len(data) + 4 - len(head) - len(middle))
    assert head + middle + rest == data + b"tail"


async def test_a_write_to_a_page_that_has_gone_closes_the_connection(reactor, connection):
    transport, page = connection(buffer=LARGE_BUFFER)
    transport.stopReading()  # only the write can find out that the page has gone
    page.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # closes with a reset
    page.close()
    transport.write(b"for nobody")  # returns: the failure is Twisted's to handle, on the loop's next turn
    await asyncio.wait_for(transport.protocol.lost.wait(), timeout=10)
    assert transport.disconnected


async def test_a_pull_producer_is_asked_for_more_until_it_is_done(reactor, connection):
    transport, page = connection(buffer=LARGE_BUFFER)
    chunks = [b"chunk %d;" % number for number in range(5)]

    @implementer(IPullProducer)
    class Chunks:
        def resumeProducing(self) -> None:  # Twisted asks once its buffer is out: no buffer, no asking
            if chunks:
                transport.write(chunks.pop(0))
            else:
                transport.unregisterProducer()

        def stopProducing(self) -> None:  # IPullProducer's; called only if the connection is lost first
            chunks.clear()

    expected = b"".join(chunks)
    transport.registerProducer(Chunks(), False)
    assert await received(page=page, size=len(expected)) == expected


async def test_a_tls_connection_writes_through_tls(reactor, connection, monkeypatch):
    # Twisted's TLS sends small writes together on the reactor's next turn: this test's reactor, not the global one.
    monkeypatch.setattr(tls, "_get_default_clock", lambda: reactor)
    transport, page = connection(buffer=LARGE_BUFFER)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    transport.startTLS(CertificateOptions(privateKey=key, certificate=certificate))
    transport.write(b"for the page only")  # before the handshake: TLS holds it, the socket must not see it
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(sock=page, ssl=client, server_hostname="localhost")
    assert await asyncio.wait_for(reader.readexactly(17), timeout=10) == b"for the page only"
    writer.transport.abort()


async def test_a_page_that_stops_reading_is_still_closed_as_a_slow_reader(reactor, connection):
    transport, page = connection(buffer=SMALL_BUFFER)
    closes = []
    protocol = SimpleNamespace(
        transport=transport,
        state=WebSocketProtocol.STATE_OPEN,
        STATE_OPEN=WebSocketProtocol.STATE_OPEN,
        STATE_CLOSING=WebSocketProtocol.STATE_CLOSING,
        STATE_CLOSED=WebSocketProtocol.STATE_CLOSED,
        sendCloseFrame=lambda code, isReply: closes.append(code),
    )

    async def send(message) -> None:  # daphne's, reduced to the write of the frame
        transport.write(message["bytes"])

    guarded = GuardedSend(protocol=protocol, send=send, scope={"path": "/ws/"})
    frame = b"x" * (1 << 16)
    written = 0
    while True:
        await guarded({"type": "websocket.send", "bytes": frame})
        if closes:
            break
        written += len(frame)
    # Closed at the first frame past the limit: what the shortcut's partial write left and what Twisted
    # buffered after it are both counted; only the kernel's few KB are not.
    assert closes == [CLOSE_SLOW_READER]
    assert SEND_BUFFER_LIMIT < transport_buffered(transport) <= SEND_BUFFER_LIMIT + len(frame)
    assert 0 < written - transport_buffered(transport) < len(frame)


def test_autobahn_formats_a_debug_line_s_arguments_only_when_it_is_written(monkeypatch):
    import autobahn.util
    from autobahn.websocket import protocol as autobahn_protocol

    from realtime_common.serve import autobahn_debug_lazy

    for name in ("hltype", "hlval", "pformat"):
        monkeypatch.setattr(autobahn_protocol, name, getattr(autobahn_protocol, name))

    def style(*args, **kwargs):
        raise AssertionError("a debug argument was coloured for a line that is not written")

    monkeypatch.setattr(autobahn.util, "hl", style)
    autobahn_debug_lazy()
    assert autobahn_protocol.hlval(5) == 5
    assert autobahn_protocol.hltype(len) is len
    pretty = autobahn_protocol.pformat([("option", 1)])
    assert f"{pretty}" == "[('option', 1)]"


def test_the_sites_defaults_come_first_so_that_the_command_line_wins():
    from realtime_common.serve import HANDSHAKE_TIMEOUT, daphne_arguments

    arguments = daphne_arguments(argv=["--websocket_connect_timeout", "7", "config.asgi:application"])
    assert arguments[:4] == ["--websocket-max-message-size", "65536", "--websocket_connect_timeout", "30"]
    assert HANDSHAKE_TIMEOUT == 30
    assert arguments[4:] == ["--websocket_connect_timeout", "7", "config.asgi:application"]


def test_autobahn_s_timings_are_still_text():
    from autobahn.websocket.protocol import Timings

    from realtime_common.serve import autobahn_debug_lazy

    autobahn_debug_lazy()
    timings = Timings()
    timings.track("open")
    assert str(timings).startswith("{'open':")


def test_a_factory_subclass_s_own_protocol_class_gets_the_options():
    from realtime_common.serve import WebSocketFactory, WebSocketProtocol

    class OwnProtocol(WebSocketProtocol):
        pass

    class OwnFactory(WebSocketFactory):
        protocol = OwnProtocol

    factory = OwnFactory(server_class=None)
    assert issubclass(factory.protocol, OwnProtocol)
    assert factory.protocol.failByDrop is False


def test_the_server_s_collector_looks_at_its_youngest_objects_less_often(monkeypatch):
    import gc

    from realtime_common import serve

    started = []
    monkeypatch.setattr(serve.ServerCommandLine, "run", lambda self, argv: started.append(argv))
    # What else main() sets, process-wide, left as it was.
    monkeypatch.setattr(serve.server, "WebSocketFactory", serve.server.WebSocketFactory)
    monkeypatch.setattr(serve.tcp.Port, "transport", serve.tcp.Port.transport)
    monkeypatch.setattr(serve, "autobahn_debug_lazy", lambda: None)
    monkeypatch.setattr(serve.sys, "argv", ["serve", "config.asgi:application"])
    before = gc.get_threshold()
    try:
        serve.main()
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_threshold() == (serve.GC_YOUNG_THRESHOLD, *before[1:])
    finally:
        gc.set_threshold(*before)
    assert started and started[0][-1] == "config.asgi:application"


def frame_parsed(data: bytes) -> Frame:
    """One frame as a client parses it (the websockets library's parser, not ours)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    try:
        next(Frame.parse(reader.read_exact, mask=False))
    except StopIteration as parsed:
        return parsed.value
    raise AssertionError("the frame is incomplete")


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65_535, 65_536, 1 << 20])
def test_a_text_frame_written_at_once_is_one_whole_unmasked_text_frame_of_every_length_encoding(length):
    """WebSocketProtocol.serverSend's own frame (a text frame, when autobahn would add nothing to it)."""
    text = ("é" * length)[: length // 2] + "a" * (length - 2 * (length // 2))  # UTF-8: ``length`` bytes
    payload = text.encode()
    assert len(payload) == length
    frame = frame_parsed(text_frame_header(length=length) + payload)
    assert (frame.opcode, frame.fin, frame.rsv1, frame.data) == (Opcode.TEXT, True, False, payload)


class Written:
    """A transport that keeps what is written."""

    def __init__(self) -> None:
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.data.append(data)


def protocol_made(**options) -> ServeWebSocketProtocol:
    """The sites' protocol, open, with autobahn's defaults for what serverSend looks at (and ``options``)."""
    protocol = ServeWebSocketProtocol.__new__(ServeWebSocketProtocol)
    defaults = {
        "state": WebSocketProtocol.STATE_OPEN,
        "_perMessageCompress": None,
        "autoFragmentSize": 0,
        "maskServerFrames": False,
        "send_queue": deque(),
        "logFrames": False,
        "logOctets": False,
        "trackedTimings": None,
        "transport": Written(),
    }
    for name, value in (defaults | options).items():
        setattr(protocol, name, value)
    return protocol


def test_a_text_message_on_an_open_socket_is_one_frame_written_at_once():
    protocol = protocol_made()
    protocol.serverSend("héllo ✓")
    (written,) = protocol.transport.data
    frame = frame_parsed(written)
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, "héllo ✓".encode())


@pytest.mark.parametrize(
    ("options", "binary"),
    [
        pytest.param({}, True, id="binary"),
        pytest.param({"state": WebSocketProtocol.STATE_CONNECTING}, False, id="not-accepted-yet"),
        pytest.param({"state": WebSocketProtocol.STATE_CLOSING}, False, id="closing"),
        pytest.param({"_perMessageCompress": object()}, False, id="compressed"),
        pytest.param({"autoFragmentSize": 16}, False, id="fragmented"),
        pytest.param({"maskServerFrames": True}, False, id="masked"),
        pytest.param({"send_queue": deque([(b"queued", False)])}, False, id="autobahn-queued-first"),
        pytest.param({"logFrames": True}, False, id="frames-logged"),
        pytest.param({"logOctets": True}, False, id="octets-logged"),
        pytest.param({"trackedTimings": object()}, False, id="timings-tracked"),
    ],
)
def test_every_other_message_goes_through_daphne_and_autobahn(options, binary, monkeypatch):
    protocol = protocol_made(**options)
    through = []
    monkeypatch.setattr(protocol, "message_send", lambda content, binary: through.append((content, binary)))
    content = b"\x00\x01" if binary else "hello"
    protocol.serverSend(content, binary)
    assert through == [(content, binary)] and protocol.transport.data == []
