import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.core.cache import cache
from django.test import Client

from realtime_common.cache import caches
from realtime_common.testing.sentinel import redis_sentinel  # noqa: F401 - registers the fixture
from rooms import presence
from rooms.models import Room
from tests.helpers import Browser, join


@pytest.fixture
def channel_layer(channel_layer, request, settings):
    """Rate limits and presence follow the layer under test: in Redis with the Redis
    layer, as they are shared between processes; in process memory with the other."""
    if isinstance(channel_layer, RedisChannelLayer):
        url = request.getfixturevalue("redis_server")
        settings.REDIS_URLS = [url]
        settings.CACHES = caches(prefix="test", redis_urls=[url])
    return channel_layer


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    # The Redis side is emptied by the channel_layer fixture.
    cache.clear()
    monkeypatch.setattr(presence, "MEMORY", presence.MemoryStore())


@pytest.fixture
def chat_rooms(transactional_db):
    return {
        room.slug: room
        for room in Room.objects.bulk_create(
            [
                Room(slug="lobby", title="Lobby"),
                Room(slug="random", title="Random <talk>"),
                Room(slug="staff-room", title="Staff room", staff_only=True),
            ]
        )
    }


@pytest.fixture
def users(django_user_model):
    """alice, bob and carol, and sam who is staff. Without passwords (hashing one
    takes a while on purpose): tests log them in with force_login."""
    names = ["alice", "bob", "carol", "sam"]
    return {name: django_user_model.objects.create_user(name, is_staff=name == "sam") for name in names}


@pytest.fixture
def logged_in(connect):
    """``await logged_in(user)``: a new browser (a session) with the user logged in."""

    @sync_to_async
    def log_in(user) -> Browser:
        client = Client()
        client.force_login(user)
        return Browser(client=client, connect=connect)

    return log_in


@pytest.fixture
def joined_tabs(logged_in, users):
    """``await joined_tabs(room=..., names=[...])``: a tab of a new browser for each user, opened
    all first and then joined in that order (each one after the first is told of those before)."""

    async def open_and_join(*, room: str, names: list[str]) -> list[WebsocketCommunicator]:
        tabs = [await (await logged_in(users[name])).open_tab() for name in names]
        for tab in tabs:
            await join(tab, room)
        return tabs

    return open_and_join
