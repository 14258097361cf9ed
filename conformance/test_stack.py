"""Not Autobahn cases: the echo route runs behind the sites' own stack, so a
handshake from another origin, or from none, is refused like on the sites."""

import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol
from wsclient import TIMEOUT, HandshakeRejected, WireClient


@pytest.mark.parametrize("origin", ["http://evil.example", "null"])
def test_foreign_origin_refused(echo_server, origin):
    with pytest.raises(HandshakeRejected) as refused:
        echo_server.connect(origin=origin).shutdown()
    assert refused.value.status == 403


def test_missing_origin_refused(echo_server):
    with pytest.raises(HandshakeRejected) as refused:
        WireClient(echo_server.host, echo_server.port, origin=None).shutdown()
    assert refused.value.status == 403


def test_offered_subprotocol_left_unchosen(echo_server):
    """The sites pick no subprotocol: whatever a page offers, the server's answer names none
    (RFC 6455 §4.2.2), whichever server runs the site; a header it made up would fail the page's handshake."""
    with connect(
        f"ws://{echo_server.host}:{echo_server.port}/ws/echo/",
        origin=echo_server.origin,
        subprotocols=[Subprotocol("chat.v1")],
        open_timeout=TIMEOUT,
    ) as socket:
        assert socket.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in socket.response.headers
        socket.send("hello")
        assert socket.recv(timeout=TIMEOUT) == "hello"
