"""Who may open a socket: origins normalised and compared exactly, and no wildcard in production."""

from urllib.parse import urlsplit

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.core.checks import Tags, run_checks
from django.core.exceptions import ImproperlyConfigured

from realtime_common.asgi import OriginValidator, asgi_application
from realtime_common.checks import wildcard_check
from realtime_common.origins import origin_normalise
from realtime_common.testing.django_fixtures import HOSTILE_ORIGINS

# Channels' consumers (the denier too) tidy the database connection on every message.
pytestmark = pytest.mark.django_db

OWN = "https://example.com"


class Accepting(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()


async def handshake(*origins: str, allowed: list[str]) -> bool:
    """Does a handshake with these Origin headers get through to the consumer?"""
    application = OriginValidator(Accepting.as_asgi(), origins=allowed)
    communicator = WebsocketCommunicator(application, "/", headers=[(b"origin", origin.encode()) for origin in origins])
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.mark.parametrize(
    ("origin", "normalised"),
    [
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
        ("HTTP://Chat.LOCALHOST:8000", "http://chat.localhost:8000"),
        ("http://example.com:80", "http://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("https://example.com:80", "https://example.com:80"),
        ("http://[::1]:8001", "http://[::1]:8001"),
    ],
)
def test_origins_are_lowercased_without_their_scheme_s_default_port(origin, normalised):
    assert origin_normalise(origin=origin) == normalised


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "",
        "*",
        "example.com",
        "http://",
        "http://example.com/",
        "http://example.com/app",
        "http://example.com?",
        "http://example.com#top",
        "http://user@example.com",
        "http://example.com:65536",
        "http://example.com:http",
    ],
)
def test_anything_but_an_origin_is_refused_by_the_normaliser(origin):
    with pytest.raises(ValueError):
        origin_normalise(origin=origin)


@pytest.mark.parametrize("origin", [OWN, "https://example.com:443", "HTTPS://EXAMPLE.COM"])
async def test_the_allowed_origin_connects_however_it_is_written(origin):
    assert await handshake(origin, allowed=[OWN])


@pytest.mark.parametrize("kind", HOSTILE_ORIGINS)
async def test_each_hostile_origin_is_refused(kind):
    origin = HOSTILE_ORIGINS[kind](urlsplit(OWN))
    assert not await handshake(*([] if origin is None else [origin]), allowed=[OWN])


async def test_two_origin_headers_are_refused_even_if_one_is_allowed():
    assert not await handshake(OWN, OWN, allowed=[OWN])
    assert not await handshake(OWN, "https://evil.example", allowed=[OWN])


async def test_the_wildcard_lets_anything_through():
    assert await handshake("https://evil.example", allowed=["*"])
    assert await handshake(allowed=["*"])


@pytest.mark.parametrize("setting", ["ALLOWED_HOSTS", "WEBSOCKET_ORIGINS"])
def test_a_wildcard_is_an_error_in_production_and_stops_the_asgi_application(settings, setting):
    settings.DEBUG = False
    setattr(settings, setting, [OWN.removeprefix("https://"), "*"])
    errors = [error for error in run_checks(tags=[Tags.security]) if error.id == "realtime_common.E001"]
    assert [error.msg for error in errors] == [
        f"{setting} contains '*' while DEBUG is off: every host or origin would be accepted."
    ]
    with pytest.raises(ImproperlyConfigured, match=f"{setting} contains"):
        asgi_application(http=None, websocket_urlpatterns=[])


def test_a_wildcard_is_allowed_while_developing(settings):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = settings.WEBSOCKET_ORIGINS = ["*"]
    assert wildcard_check() == []
    assert asgi_application(http=None, websocket_urlpatterns=[])
