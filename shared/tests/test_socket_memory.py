"""What an open socket keeps for its whole life, beyond its consumer: the site's middleware
stack (realtime_common.asgi) holds one copy of the scope of its own (docs/scale.md, "Memory")."""

import gc

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import SessionBase
from django.urls import path

from realtime_common.asgi import asgi_application

pytestmark = pytest.mark.django_db

OWN = "https://example.com"


class Accepting(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()


def scopes_of(*, marker: bytes) -> list[dict]:
    """Every dict alive that is the scope of the socket whose query string is ``marker``, or a copy of it."""
    return [
        candidate
        for candidate in gc.get_objects()
        if type(candidate) is dict and candidate.get("type") == "websocket" and candidate.get("query_string") == marker
    ]


async def test_an_open_socket_keeps_three_scopes_the_server_s_the_login_s_and_the_route_s(settings):
    settings.WEBSOCKET_ORIGINS = [OWN]
    application = asgi_application(http=None, websocket_urlpatterns=[path("ws/x/", Accepting.as_asgi())])
    communicator = WebsocketCommunicator(application, "/ws/x/?memory", headers=[(b"origin", OWN.encode())])
    connected, _ = await communicator.connect()
    assert connected
    scopes = scopes_of(marker=b"memory")
    # The server's own; SocketLogin's, with the session and the user as they are, not behind lazy
    # wrappers; the router's, with the route, which the consumer keeps. Channels' AuthMiddlewareStack,
    # with the ticket's middleware between its layers, kept three more, all alive until the socket closes.
    assert len(scopes) == 3
    consumer_scope = next(scope for scope in scopes if "url_route" in scope)
    assert isinstance(consumer_scope["session"], SessionBase)
    assert isinstance(consumer_scope["user"], AnonymousUser)
    assert consumer_scope["cookies"] == {}
    await communicator.disconnect()
