"""GuardedSend, on a stand-in for daphne's protocol (an autobahn WebSocketProtocol: its states);
ClosedSocketSend, on stand-ins for another server's send."""

from types import SimpleNamespace

import pytest
from autobahn.websocket.protocol import WebSocketProtocol

from realtime_common.sockets import ClosedSocketSend, GuardedSend, SocketGuard

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


FRAME = {"type": "websocket.send", "text": "{}"}


class ServerSend:
    """Another server's ``send``: records what it takes, and raises ``error`` for the frames listed in ``fails``."""

    def __init__(self, *, error: Exception | None = None, fails: tuple[str, ...] = ("websocket.send",)):
        self.error, self.fails, self.taken = error, fails, []

    async def __call__(self, message):
        if self.error is not None and message["type"] in self.fails:
            raise self.error
        self.taken.append(message)


# uvicorn's, for a frame to a socket that has gone: ClientDisconnected (an OSError), or a RuntimeError once it sent the Close.
GONE = [ConnectionResetError("the page has gone"), RuntimeError("Unexpected ASGI message 'websocket.send'")]


@pytest.mark.parametrize("error", GONE, ids=["OSError", "RuntimeError"])
async def test_a_frame_for_a_socket_the_server_says_has_gone_is_dropped_and_so_is_every_later_one(error):
    server = ServerSend()
    send = ClosedSocketSend(send=server)
    await send({"type": "websocket.accept"})
    server.error = error
    await send(FRAME)  # raised nothing
    server.error = None
    await send(FRAME)
    await send({"type": "websocket.close", "code": 1000})
    assert server.taken == [{"type": "websocket.accept"}]


async def test_a_frame_before_the_accept_is_the_consumer_s_bug_and_raised():
    server = ServerSend(error=RuntimeError("Expected ASGI message 'websocket.accept'"))
    send = ClosedSocketSend(send=server)
    with pytest.raises(RuntimeError, match="websocket.accept"):
        await send(FRAME)
    server.error = None
    await send({"type": "websocket.accept"})
    await send(FRAME)
    assert server.taken == [{"type": "websocket.accept"}, FRAME]


async def test_after_the_consumer_s_close_its_frames_and_another_close_are_dropped():
    server = ServerSend()
    send = ClosedSocketSend(send=server)
    await send({"type": "websocket.accept"})
    await send(FRAME)
    await send({"type": "websocket.close", "code": 4000})
    await send(FRAME)
    await send({"type": "websocket.close", "code": 1000})
    assert server.taken == [{"type": "websocket.accept"}, FRAME, {"type": "websocket.close", "code": 4000}]


async def test_a_server_error_on_anything_but_a_frame_is_raised():
    send = ClosedSocketSend(send=ServerSend(error=RuntimeError("accept twice"), fails=("websocket.accept",)))
    with pytest.raises(RuntimeError, match="accept twice"):
        await send({"type": "websocket.accept"})


async def test_a_socket_served_by_another_server_than_daphne_gets_the_closed_socket_send():
    given = []

    async def application(scope, receive, send):
        given.append(send)

    await SocketGuard(application)({"type": "websocket", "path": "/ws/"}, None, ServerSend())
    assert isinstance(given[0], ClosedSocketSend)
