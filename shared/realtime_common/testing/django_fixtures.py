"""Fixtures for a site's own tests (pytest-django); load with
``-p realtime_common.testing.django_fixtures``.

- ``channel_layer``: runs a test once with the in-memory layer and once with Redis.
- ``connect``: opens WebSocket connections to the site's ASGI application.
- ``redis_server``: a real, throwaway Redis (from ``servers``).
"""

import os
import secrets

import pytest
import redis
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from realtime_common.layers import WORKER_LAYER, channel_layers
from realtime_common.testing.servers import redis_server  # noqa: F401 - registers the fixture

# Settings refuse to load without a secret key unless DEBUG is on, and tests run with DEBUG off.
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-" + secrets.token_urlsafe(16))


@pytest.fixture(params=["memory", "redis"])
def channel_layer(request, settings):
    """Run the test against both layers; returns the layer the consumers will use.

    Changing CHANNEL_LAYERS makes Channels drop its cached layer, so every test
    gets a fresh one, and Redis is emptied first so no group outlives a test.
    """
    redis_urls = []
    if request.param == "redis":
        url = request.getfixturevalue("redis_server")
        redis.Redis.from_url(url).flushall()
        redis_urls = [url]
    settings.CHANNEL_LAYERS = channel_layers(
        prefix="test",
        redis_urls=redis_urls,
        kind=settings.REDIS_CHANNEL_LAYER,
        workers=WORKER_LAYER in settings.CHANNEL_LAYERS,
    )
    return get_channel_layer()


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Unit tests render templates without running collectstatic first."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }



@pytest.fixture
async def connect():
    """``await connect(path)`` opens a socket as a page of this site would and
    returns ``(communicator, connected)``; every socket is closed after the test."""
    # Imported now, not at the top: the Origin validator reads ALLOWED_HOSTS when
    # it is built, and the test environment adds "testserver" to it only now.
    from config.asgi import application

    communicators = []

    async def open_socket(path: str, *, origin: bytes = b"http://testserver", headers=()):
        communicator = WebsocketCommunicator(application, path, headers=[(b"origin", origin), *headers])
        connected, _ = await communicator.connect()
        communicators.append(communicator)
        return communicator, connected

    yield open_socket
    for communicator in communicators:
        await communicator.disconnect()
