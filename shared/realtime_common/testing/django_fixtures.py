"""Fixtures for a site's own tests (pytest-django); load with
``-p realtime_common.testing.django_fixtures``.

- ``channel_layer``: runs a test once with the in-memory layer and once with Redis.
- ``connect``: opens WebSocket connections to the site's ASGI application, from
  the site's own origin (``site_origin``) unless told otherwise.
- ``hostile_origin``: runs a test once with each Origin a socket must refuse.
- ``redis_server``: a real, throwaway Redis (from ``servers``).
- ``concurrent_writers``, and Postgres with TEST_DATABASE=postgres (from ``databases``).
"""

import os
import secrets
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

import pytest
import redis
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from realtime_common.layers import WORKER_LAYER, channel_layers
from realtime_common.origins import DEFAULT_PORTS
from realtime_common.testing.servers import redis_server  # noqa: F401 - registers the fixture

# Its hooks start Postgres before pytest-django loads the settings: a plugin, not fixtures to import.
pytest_plugins = ["realtime_common.testing.databases"]

# Settings refuse to load without a secret key unless DEBUG is on, and tests run with DEBUG off.
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-" + secrets.token_urlsafe(16))
# The test client's host, on a port that is not the scheme's default, so that a wrong
# scheme or port alone is noticed: the site's WebSocket origin is https://testserver:8443.
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
os.environ.setdefault("DJANGO_PUBLIC_PORTS", "8443")
# Cookies are Secure as in production, but the test client speaks plain http.
os.environ.setdefault("DJANGO_SSL_REDIRECT", "0")


def port_suffix(*, own: SplitResult) -> str:
    return f":{own.port}" if own.port else ""


# What a page elsewhere, or a script, may send instead of the site's own Origin
# (``own``, split), by what is wrong with it; None: no Origin header at all.
HOSTILE_ORIGINS: dict[str, Callable[[SplitResult], str | None]] = {
    "foreign": lambda own: f"{own.scheme}://evil.example{port_suffix(own=own)}",
    "null": lambda own: "null",
    "missing": lambda own: None,
    "other-scheme": lambda own: f"{'http' if own.scheme == 'https' else 'https'}://{own.netloc}",
    "other-port": lambda own: f"{own.scheme}://{own.hostname}:{(own.port or DEFAULT_PORTS[own.scheme]) + 1}",
    "suffix": lambda own: f"{own.scheme}://{own.hostname}.evil.example{port_suffix(own=own)}",
    "prefix": lambda own: f"{own.scheme}://evil-{own.netloc}",
}


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
def site_origin() -> str:
    """The Origin the site's own pages send: the first of its WEBSOCKET_ORIGINS."""
    return django_settings.WEBSOCKET_ORIGINS[0]


@pytest.fixture(params=list(HOSTILE_ORIGINS))
def hostile_origin(request, site_origin) -> str | None:
    """Each Origin the site's sockets must refuse, one per run of the test."""
    return HOSTILE_ORIGINS[request.param](urlsplit(site_origin))


@pytest.fixture
async def connect(site_origin):
    """``await connect(path)`` opens a socket as a page of this site would and
    returns ``(communicator, connected)``; every socket is closed after the test.
    ``origin=`` sends another Origin header, or none with None."""
    # Imported now, not at the top: the application needs Django set up.
    from config.asgi import application

    communicators = []

    async def open_socket(path: str, *, origin: str | None = site_origin, headers=()):
        origin_header = [] if origin is None else [(b"origin", origin.encode())]
        communicator = WebsocketCommunicator(application, path, headers=[*origin_header, *headers])
        connected, _ = await communicator.connect()
        communicators.append(communicator)
        return communicator, connected

    yield open_socket
    for communicator in communicators:
        await communicator.disconnect()
