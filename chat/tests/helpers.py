"""What the consumer tests do with sockets."""

from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client


@dataclass
class Browser:
    """One browser: a login session, and as many tabs (sockets) on it as a test opens."""

    client: Client
    connect: object

    @property
    def session_key(self) -> str:
        return self.client.cookies[settings.SESSION_COOKIE_NAME].value

    @property
    def cookie(self) -> tuple[bytes, bytes]:
        """The Cookie header the browser sends with its sockets."""
        return b"cookie", f"{settings.SESSION_COOKIE_NAME}={self.session_key}".encode()

    async def open_tab(self, query: str = "") -> WebsocketCommunicator:
        socket, connected = await self.connect(f"/ws/chat/{query}", headers=[self.cookie])
        assert connected
        return socket

    async def log_out(self) -> None:
        response = await sync_to_async(self.client.post)("/accounts/logout/")
        assert response.status_code == 302


async def join(socket: WebsocketCommunicator, room: str, **fields) -> dict:
    """Join a room; the joined frame."""
    await socket.send_json_to({"command": "join", "room": room, **fields})
    frame = await socket.receive_json_from()
    assert (frame["type"], frame["room"]) == ("joined", room), frame
    return frame


async def say(socket: WebsocketCommunicator, room: str, text: str) -> None:
    await socket.send_json_to({"command": "send", "room": room, "text": text})


async def crashing_tab_open(*, browser: Browser, origin: str) -> WebsocketCommunicator:
    """A tab of the browser for a consumer the test crashes: not opened through the connect
    fixture, which would close it again at the end."""
    # Imported now, not at the top: the application needs Django set up.
    from config.asgi import application

    socket = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", origin.encode()), browser.cookie])
    assert (await socket.connect())[0]
    return socket


async def consumer_crash(*, socket: WebsocketCommunicator, room: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash the socket's consumer: it fails to read the history of ``room`` as it joins it."""

    def history_fails(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("rooms.consumers.room_history", history_fails)
    await socket.send_json_to({"command": "join", "room": room})
    with pytest.raises(RuntimeError, match="the database went away"):
        await socket.wait()
