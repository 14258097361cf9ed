"""Not Autobahn cases: the client's own checks, against a canned server, for the
misbehaviours daphne never shows (so the cases would never see them fail)."""

import base64
import hashlib
import re
import socket
import struct
import threading

import pytest
from wsclient import NothingReceived, WireClient, message

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(opcode: int, payload: bytes = b"", *, masked: bool = False) -> bytes:
    header = bytes([0x80 | opcode, (0x80 if masked else 0) | len(payload)])
    return header + (b"\x00\x00\x00\x00" if masked else b"") + payload


@pytest.fixture
def canned():
    """``canned(*replies, codeless_failures=...)``: a server that accepts the handshake, waits for the client's
    first write, sends ``replies`` and closes; with no replies it stays silent until the
    client goes. Returns a connected client with a short timeout."""
    started = []

    def serve(*replies: bytes, codeless_failures: bool = False) -> WireClient:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5)

        def run():
            with listener, listener.accept()[0] as connection:
                connection.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(4096)
                key = re.search(rb"(?i)sec-websocket-key: *(\S+)", request).group(1)
                accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
                connection.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                )
                connection.recv(65536)
                if replies:
                    connection.sendall(b"".join(replies))
                else:
                    while connection.recv(65536):
                        pass

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        client = WireClient(
            "127.0.0.1",
            listener.getsockname()[1],
            origin="http://127.0.0.1",
            timeout=0.5,
            codeless_failures=codeless_failures,
        )
        started.append((thread, client))
        return client

    yield serve
    for thread, client in started:
        client.shutdown()
        thread.join(timeout=5)


def test_octets_after_the_servers_close_are_caught(canned):
    ws = canned(server_frame(0x8, struct.pack("!H", 1000)), server_frame(0xA))
    with pytest.raises(AssertionError, match="octets after its Close"):
        ws.close_handshake()


def test_a_masked_server_frame_is_refused(canned):
    ws = canned(server_frame(0x1, b"hi", masked=True))
    ws.send(message("hi"))
    with pytest.raises(AssertionError, match="invalid frame"):
        ws.receive()


def test_an_echo_instead_of_a_failure_is_caught(canned):
    ws = canned(server_frame(0x1, b"hi"))
    ws.send(message("hi"))
    with pytest.raises(AssertionError, match="failed with 1002"):
        ws.expect_failure(1002)


def test_a_close_with_the_wrong_code_is_caught(canned):
    ws = canned(server_frame(0x8, struct.pack("!H", 1000)))
    ws.send(message("hi"))
    with pytest.raises(AssertionError, match="code 1000, expected 1002"):
        ws.expect_failure(1002)


def test_silence_is_not_a_failure(canned):
    ws = canned()
    ws.send(message("hi"))
    with pytest.raises(NothingReceived):
        ws.expect_failure(1002)


def test_a_close_without_a_code_is_caught(canned):
    ws = canned(server_frame(0x8))
    ws.send(message("hi"))
    with pytest.raises(AssertionError, match="code None, expected 1002"):
        ws.expect_failure(1002)


def test_a_close_without_a_code_passes_for_a_server_known_for_it(canned):
    """granian's way (cases.CODELESS_FAILURES): the connection is still failed, and so counted."""
    ws = canned(server_frame(0x8), codeless_failures=True)
    ws.send(message("hi"))
    ws.expect_failure(1002)
    assert ws.failure == "close, no code"
