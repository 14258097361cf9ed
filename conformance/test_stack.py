"""Not Autobahn cases: the echo route runs behind the sites' own stack, so a
handshake from another origin, or from none, is refused like on the sites."""

import pytest
from wsclient import HandshakeRejected, WireClient


@pytest.mark.parametrize("origin", ["http://evil.example", "null"])
def test_foreign_origin_refused(echo_server, origin):
    with pytest.raises(HandshakeRejected) as refused:
        echo_server.connect(origin=origin).shutdown()
    assert refused.value.status == 403


def test_missing_origin_refused(echo_server):
    with pytest.raises(HandshakeRejected) as refused:
        WireClient(echo_server.host, echo_server.port, origin=None).shutdown()
    assert refused.value.status == 403
