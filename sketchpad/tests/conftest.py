import pytest
from channels.layers import get_channel_layer
from django.core.cache import cache

from realtime_common.layers import WORKER_LAYER

from boards.models import Board


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


@pytest.fixture
def board(transactional_db):
    return Board.objects.create(slug="friday", title="Ideas for Friday")


def draw(stroke="s1", points=((0.25, 0.5),), *, done=False, color="#ff0000", width=4) -> dict:
    """A draw frame as a page sends it."""
    return {"type": "draw", "stroke": stroke, "color": color, "width": width, "points": [list(p) for p in points], "done": done}
