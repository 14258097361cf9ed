"""Redis through Sentinel (realtime_common.redis_servers): REDIS_SENTINELS and
REDIS_SENTINEL_MASTER become the channel layers' and the cache's configuration, and
with a real primary, replica and sentinel every client follows a failover."""

import asyncio
import time

import pytest
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.core.cache import caches as cache_handler
from django.core.exceptions import ImproperlyConfigured

from realtime_common.cache import SentinelRedisCache, caches
from realtime_common.layers import LAYER_RECONNECTED, channel_layer_description, channel_layers
from realtime_common.redis_servers import SENTINEL_TIMEOUT, RedisSentinel, redis_sentinel_from_env
from tests.test_settings import REPO, load_settings

SENTINEL = RedisSentinel(sentinels=(("s1", 26379), ("s2", 26379)), master="realtime", db=2, password="p4ss")


def test_without_sentinels_there_is_no_sentinel():
    assert redis_sentinel_from_env(environ={}, urls=["redis://a:6379/0"]) is None


def test_the_redis_sentineltings_are_read_from_the_environment():
    environ = {
        "REDIS_SENTINELS": "s1:26379, s2:26380",
        "REDIS_SENTINEL_MASTER": "realtime",
        "REDIS_SENTINEL_DB": "3",
        "REDIS_PASSWORD": "p4ss",
        "REDIS_SENTINEL_PASSWORD": "s3cret",
    }
    assert redis_sentinel_from_env(environ=environ, urls=[]) == RedisSentinel(
        sentinels=(("s1", 26379), ("s2", 26380)), master="realtime", db=3, password="p4ss", sentinel_password="s3cret"
    )
    # The database number and the passwords have defaults: 0, none.
    assert redis_sentinel_from_env(
        environ={"REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_MASTER": "realtime"}, urls=[]
    ) == RedisSentinel(sentinels=(("s1", 26379),), master="realtime")


@pytest.mark.parametrize(
    ("environ", "urls", "error"),
    [
        ({"REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_MASTER": "realtime"}, ["redis://a:6379/0"], "not both"),
        ({"REDIS_SENTINELS": "s1:26379"}, [], "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "realtime"}, [], "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s1", "REDIS_SENTINEL_MASTER": "realtime"}, [], "not host:port"),
        ({"REDIS_SENTINELS": "s1:port", "REDIS_SENTINEL_MASTER": "realtime"}, [], "not host:port"),
        ({"REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_DB": "one"}, [], "number"),
    ],
)
def test_a_half_or_double_redis_configuration_is_an_error(environ, urls, error):
    with pytest.raises(ImproperlyConfigured, match=error):
        redis_sentinel_from_env(environ=environ, urls=urls)


def test_both_channel_layers_and_the_worker_layer_find_the_primary_through_the_sentinels():
    layers = channel_layers(prefix="pad", redis_urls=[], sentinel=SENTINEL, kind="pubsub", workers=True)
    assert layers["default"]["BACKEND"] == "realtime_common.layers.RedisPubSubLayer"
    assert layers["worker"]["BACKEND"] == "realtime_common.layers.RedisCoreLayer"
    for layer in layers.values():
        [host] = layer["CONFIG"]["hosts"]
        assert "address" not in host
        assert (host["sentinels"], host["master_name"], host["db"], host["password"]) == (
            [("s1", 26379), ("s2", 26379)],
            "realtime",
            2,
            "p4ss",
        )
        # A sentinel that does not answer is given up on quickly, for the next one.
        assert host["sentinel_kwargs"]["socket_timeout"] == SENTINEL_TIMEOUT
        # The same connection options as with URLs: no read timeout (channels_redis#422).
        assert (host["socket_timeout"], host["socket_keepalive"]) == (None, True)
    shown = channel_layer_description(layers)
    assert shown == "Redis pubsub channel layer at the primary 'realtime' (db 2) of the sentinels s1:26379, s2:26379"


def test_a_site_started_with_sentinels_uses_them_for_every_redis_client():
    sentinel_env = {"REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_MASTER": "realtime", "DJANGO_SECRET_KEY": "k"}
    result = load_settings(
        show="s.CHANNEL_LAYERS['worker']['CONFIG']['hosts'][0]['master_name'], s.CACHES['default']['LOCATION'],"
        " s.REDIS_SENTINEL.sentinels",
        cwd=REPO / "sketchpad",
        module="config.settings",
        **sentinel_env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "realtime realtime (('s1', 26379),)"
    both = load_settings(cwd=REPO / "chat", module="config.settings", REDIS_URL="redis://a:6379/0", **sentinel_env)
    assert both.returncode != 0 and "Set REDIS_URL or REDIS_SENTINELS, not both" in both.stderr


def test_the_cache_finds_the_primary_through_the_sentinels():
    config = caches(prefix="chat", redis_urls=[], sentinel=SENTINEL)["default"]
    assert config["BACKEND"] == "realtime_common.cache.SentinelRedisCache"
    assert (config["LOCATION"], config["KEY_PREFIX"]) == ("realtime", "chat")
    assert config["OPTIONS"]["sentinels"] == [("s1", 26379), ("s2", 26379)]
    assert (config["OPTIONS"]["db"], config["OPTIONS"]["password"]) == (2, "p4ss")


async def test_every_client_follows_a_failover_to_the_promoted_replica(redis_sentinel, settings):
    """The primary killed for good: the sentinel promotes the replica, and the pub/sub
    layer (its consumers told to catch up), the core layer and the cache all reach it."""
    sentinel = redis_sentinel_from_env(environ=redis_sentinel.env, urls=[])
    settings.CHANNEL_LAYERS = channel_layers(
        prefix="fail", redis_urls=[], sentinel=sentinel, kind="pubsub", workers=True
    )
    settings.CACHES = caches(prefix="fail", redis_urls=[], sentinel=sentinel)
    assert isinstance(cache_handler["default"], SentinelRedisCache)
    pubsub, core = get_channel_layer(), get_channel_layer("worker")
    channel = await pubsub.new_channel()
    await pubsub.group_add("room", channel)
    await pubsub.group_send("room", {"type": "before"})
    assert (await pubsub.receive(channel))["type"] == "before"
    await asyncio.to_thread(cache.set, "count", 1)
    # Stored on the sentinel's primary, which waits until its replica has it too.
    primary = redis_sentinel.client(redis_sentinel.primary.port)
    assert primary.exists("fail:1:count")
    assert await asyncio.to_thread(primary.wait, 1, 5000) == 1
    primary.close()

    killed = time.monotonic()
    redis_sentinel.primary.stop(kill=True)
    # Told to catch up once its subscriptions are back, on the new primary.
    assert (await asyncio.wait_for(pubsub.receive(channel), timeout=15))["type"] == LAYER_RECONNECTED
    assert redis_sentinel.master_port() == redis_sentinel.replica.port
    assert time.monotonic() - killed < 15
    await pubsub.group_send("room", {"type": "after"})
    assert (await asyncio.wait_for(pubsub.receive(channel), timeout=5))["type"] == "after"
    await core.send("jobs", {"type": "job"})
    assert (await asyncio.wait_for(core.receive("jobs"), timeout=5))["type"] == "job"
    # The cache's next connection asks the sentinel too, and finds what was replicated.
    assert await asyncio.to_thread(cache.get, "count") == 1
    await pubsub.flush()
    await core.flush()
