import pytest
from channels.layers import get_channel_layer

from realtime_common.layers import channel_layers
from realtime_common.testing.sentinel import redis_sentinel  # noqa: F401 - registers the fixture
from realtime_common.testing.servers import redis_server  # noqa: F401 - registers the fixture


@pytest.fixture(params=["memory", "core", "pubsub"])
def layer(request, settings):
    """Run the test on the in-memory layer and on both Redis layers; the layer the code under test uses."""
    urls = [request.getfixturevalue("redis_server")] if request.param != "memory" else []
    settings.CHANNEL_LAYERS = channel_layers(prefix="shared-test", redis_urls=urls, kind=request.param)
    return get_channel_layer()
