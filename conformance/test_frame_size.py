"""Not Autobahn cases: a message over the sites' 64 KiB limit, of any size, in one frame
or in many, is answered with a Close frame carrying 1009 (message too big), never a
dropped connection, which a page could not tell from a network failure. The client is
the `websockets` library, as a page's browser would be: it answers the Close and reports
the code it got."""

import os
import struct
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect
from wsclient import BINARY, TIMEOUT, Close

from realtime_common.consumers import CLOSE_TOO_BIG, FRAME_MAX_BYTES

REPOSITORY = Path(__file__).resolve().parent.parent
KiB = 1024
OVERSIZED = [66 * KiB, 100 * KiB, 2 * KiB * KiB]


def echo_connect(echo_server, *, route: str = "echo"):
    return connect(
        f"ws://{echo_server.host}:{echo_server.port}/ws/{route}/",
        origin=echo_server.origin,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        max_size=None,
    )


@pytest.mark.parametrize("message", [b"x" * FRAME_MAX_BYTES, "é" * (FRAME_MAX_BYTES // 2)], ids=["binary", "text"])
def test_message_at_the_limit_echoed(echo_server, message):
    with echo_connect(echo_server) as socket:
        socket.send(message)
        assert socket.recv(timeout=TIMEOUT) == message


@pytest.mark.parametrize("size", OVERSIZED)
def test_the_server_sends_frames_over_the_limit(echo_server, size):
    """The limit is on what a page sends: the sites' own frames (a board's snapshot) are bigger."""
    with echo_connect(echo_server, route="sized") as socket:
        socket.send(str(size))
        assert len(socket.recv(timeout=TIMEOUT)) == size


@pytest.mark.parametrize("size", OVERSIZED)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_oversized_frame_closed_with_1009(echo_server, size, kind):
    message = "x" * size if kind == "text" else b"x" * size
    with echo_connect(echo_server) as socket, pytest.raises(ConnectionClosedError) as closed:
        socket.send(message)
        socket.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None, "the connection was dropped with no Close frame"
    assert closed.value.rcvd.code == CLOSE_TOO_BIG


@pytest.mark.parametrize("size", OVERSIZED)
def test_oversized_fragmented_message_closed_with_1009(echo_server, size):
    """Fragments each under the limit: their sum counts, so a long message is not kept whole either."""
    fragments = [b"x" * (16 * KiB)] * (size // (16 * KiB)) + [b"x" * (size % (16 * KiB))]
    with echo_connect(echo_server) as socket, pytest.raises(ConnectionClosedError) as closed:
        socket.send(iter(fragments))
        socket.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None, "the connection was dropped with no Close frame"
    assert closed.value.rcvd.code == CLOSE_TOO_BIG


def test_oversized_frame_refused_on_its_header(ws):
    """The server decides on the length in a frame's header: a frame announcing 1 GiB, of
    which 1 KiB came, is refused at once, neither waited for nor kept in memory."""
    header = struct.pack("!BBQ", 0x80 | BINARY, 0x80 | 127, 1024 * KiB * KiB) + os.urandom(4)
    ws.send(header + os.urandom(KiB))
    refused = ws.receive()
    assert isinstance(refused, Close), f"expected a Close frame, got {refused!r}"
    assert refused.code == CLOSE_TOO_BIG


def test_sites_served_as_the_echo_site():
    """What this file proves holds for the sites only if they start daphne the same way: the
    Procfile (`make run`) and docker/start (the image); the test servers (realtime_common.testing.servers) do too."""
    procfile = (REPOSITORY / "Procfile").read_text().splitlines()
    served = [line for line in procfile if "config.asgi:application" in line]
    assert len(served) == 3
    assert all("exec python -m realtime_common.serve " in line for line in served), served
    assert "exec python -m realtime_common.serve " in (REPOSITORY / "docker" / "start").read_text()
