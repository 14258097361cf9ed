import pytest
from channels.layers import get_channel_layer
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache

from boards.models import Board
from boards.selectors import AUTHOR_SESSION_KEY
from realtime_common.layers import WORKER_LAYER


@pytest.fixture(autouse=True)
def _empty_cache():
    """The thumbnail requests' flags live in the cache, which outlives a test in process memory."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def worker_layer(channel_layer):
    """The layer thumbnail jobs travel on, of the same kind (memory or Redis) as ``channel_layer``."""
    return get_channel_layer(WORKER_LAYER)


# The author id of the browser that created the board of the ``board`` fixture.
CREATOR = "creator-1"


@pytest.fixture
def board(transactional_db):
    # Markup in the title: the pages must show it as text.
    return Board.objects.create(slug="friday", title='Friday <img src=x onerror="alert(1)">', creator=CREATOR)


@pytest.fixture
def creator_cookie(transactional_db, settings) -> tuple[bytes, bytes]:
    """The Cookie header of the browser that created the board: it may clear it."""
    session = SessionStore()
    session[AUTHOR_SESSION_KEY] = CREATOR
    session.create()
    return b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


def draw(stroke="s1", points=((0.25, 0.5),), *, done=False, color="#ff0000", width=4) -> dict:
    """A draw frame as a page sends it."""
    return {
        "type": "draw",
        "stroke": stroke,
        "color": color,
        "width": width,
        "points": [list(p) for p in points],
        "done": done,
    }
