"""Fixtures for a site's own tests (pytest-django); load with
``-p realtime_common.testing.django_fixtures``.

- ``channel_layer``: runs a test once with the in-memory layer and once with Redis.
- ``redis_server``: a real, throwaway Redis (from ``servers``).
"""

import os
import secrets

import pytest
import redis
from channels.layers import get_channel_layer

from realtime_common.layers import channel_layers
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
    settings.CHANNEL_LAYERS = channel_layers(prefix="test", redis_urls=redis_urls)
    return get_channel_layer()


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Unit tests render templates without running collectstatic first."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

