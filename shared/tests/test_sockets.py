"""GuardedSend, on a stand-in for daphne's protocol (an autobahn WebSocketProtocol: its states)."""

from types import SimpleNamespace

import pytest
from autobahn.websocket.protocol import WebSocketProtocol

from realtime_common.sockets import GuardedSend

STATES = ("STATE_CLOSED", "STATE_CONNECTING", "STATE_CLOSING", "STATE_OPEN")


async def frames_passed_on(*, state: str) -> list[dict]:
    """What reaches daphne of one frame a consumer sends while its socket is in ``state``."""
    protocol = SimpleNamespace(**{name: getattr(WebSocketProtocol, name) for name in STATES}, transport=None)
    protocol.state = getattr(WebSocketProtocol, state)
    passed = []

    async def send(message):
        passed.append(message)

    await GuardedSend(protocol=protocol, send=send, scope={"path": "/ws/"})({"type": "websocket.send", "text": "{}"})
    return passed


@pytest.mark.parametrize("state", ["STATE_CLOSING", "STATE_CLOSED"])
async def test_a_frame_for_a_socket_that_is_closing_is_dropped_instead_of_raising(state):
    assert await frames_passed_on(state=state) == []


async def test_a_frame_for_an_open_socket_is_passed_on():
    assert await frames_passed_on(state="STATE_OPEN") == [{"type": "websocket.send", "text": "{}"}]
