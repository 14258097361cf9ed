"""Redis through Sentinel (realtime_common.redis_servers): REDIS_SENTINELS and
REDIS_SENTINEL_MASTER become the channel layers' and the cache's configuration, and
with a real primary, replica and sentinel every client follows a failover."""

import asyncio
import os
import signal
import time

import pytest
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.core.cache import caches as cache_handler
from django.core.exceptions import ImproperlyConfigured

from realtime_common.cache import SentinelRedisCache, caches
from realtime_common.layers import (
    HEALTH_CHECK_GRACE,
    LAYER_RECONNECTED,
    READ_TIMEOUT,
    channel_layer_description,
    channel_layers,
)
from realtime_common.redis_servers import (
    POOL_SIZE,
    POOL_WAIT,
    SENTINEL_TIMEOUT,
    RedisSentinel,
    redis_client_async,
    redis_hosts,
    redis_sentinel_from_env,
)
from tests.test_settings import REPO, load_settings

SENTINEL = RedisSentinel(sentinels=(("s1", 26379), ("s2", 26379)), master="realtime", db=2, password="p4ss")


def test_without_sentinels_there_is_no_sentinel():
    assert redis_sentinel_from_env(environ={}, urls=["redis://a:6379/0"]) is None


def test_the_sentinel_settings_are_read_from_the_environment():
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
    # An IPv6 address loses the brackets that set it apart from its port.
    assert redis_sentinel_from_env(
        environ={"REDIS_SENTINELS": "[::1]:26379", "REDIS_SENTINEL_MASTER": "realtime"}, urls=[]
    ).sentinels == (("::1", 26379),)


@pytest.mark.parametrize(
    ("environ", "urls", "error"),
    [
        ({"REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_MASTER": "realtime"}, ["redis://a:6379/0"], "not both"),
        ({"REDIS_SENTINELS": "s1:26379"}, [], "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "realtime"}, [], "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s1", "REDIS_SENTINEL_MASTER": "realtime"}, [], "not host:port"),
        ({"REDIS_SENTINELS": "s1:port", "REDIS_SENTINEL_MASTER": "realtime"}, [], "not host:port"),
        ({"REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_DB": "one"}, [], "number"),
        # Read only with Sentinel: with a URL it would be silently left out.
        ({"REDIS_PASSWORD": "p4ss"}, ["redis://a:6379/0"], "goes in the URL"),
        ({"REDIS_SENTINEL_PASSWORD": "s3cret"}, ["redis://a:6379/0"], "goes in the URL"),
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
        # The same connection options as with URLs: the core layer's read timeout longer than BZPOPMIN's
        # (channels_redis#422); none under the pub/sub subscriber's polls.
        expected = READ_TIMEOUT if layer["BACKEND"].endswith("RedisCoreLayer") else None
        assert (host["socket_timeout"], host["socket_keepalive"]) == (expected, True)
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


def test_every_cache_client_of_a_process_shares_one_sentinel_pool():
    """Django makes a cache per context (each consumer's task): they must not each open
    a connection to the sentinels and a pool of their own."""
    config = caches(prefix="chat", redis_urls=[], sentinel=SENTINEL)["default"]
    clients = [SentinelRedisCache(config["LOCATION"], config)._cache for _ in range(50)]
    pools = {id(client._get_connection_pool(write)) for client in clients for write in (True, False)}
    assert len(pools) == 1
    # The connection options are those of the layers and the presence store.
    [host] = redis_hosts(urls=[], sentinel=SENTINEL)
    pool = clients[0]._get_connection_pool(True)
    assert pool.connection_kwargs["health_check_interval"] == host["health_check_interval"]


async def test_a_burst_of_new_connections_all_find_the_primary(redis_sentinel):
    """150 commands at once on a fresh pool open 150 connections, each asking where the
    primary is: beyond the sentinel clients' pool (100) they failed with MasterNotFoundError."""
    [host] = redis_hosts(urls=[], sentinel=redis_sentinel_from_env(environ=redis_sentinel.env, urls=[]))
    client = redis_client_async(host=host, max_connections=POOL_SIZE, timeout=POOL_WAIT)
    try:
        assert await asyncio.gather(*(client.ping() for _ in range(150))) == [True] * 150
        # Each had a connection of its own, still open in the pool.
        assert (await client.info("clients"))["connected_clients"] >= 150
    finally:
        await client.aclose()


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

    killed = time.monotonic()
    redis_sentinel.primary.stop(kill=True)
    # Told to catch up once its subscriptions are back, on the new primary.
    assert (await asyncio.wait_for(pubsub.receive(channel), timeout=15))["type"] == LAYER_RECONNECTED
    assert await asyncio.to_thread(redis_sentinel.master_port) == redis_sentinel.replica.port
    assert time.monotonic() - killed < 15
    await pubsub.group_send("room", {"type": "after"})
    assert (await asyncio.wait_for(pubsub.receive(channel), timeout=5))["type"] == "after"
    await core.send("jobs", {"type": "job"})
    assert (await asyncio.wait_for(core.receive("jobs"), timeout=5))["type"] == "job"
    # The cache's next connection asks the sentinel too, and finds what was replicated.
    assert await asyncio.to_thread(cache.get, "count") == 1
    await pubsub.flush()
    await core.flush()


async def test_every_layer_leaves_a_primary_that_hangs_for_the_promoted_replica(redis_sentinel, settings):
    """The primary stopped (SIGSTOP: as a machine gone without a TCP reset, it answers
    nothing, not even an error): the pub/sub layer notices its silent health check, the
    core layer its read timeout, and both reach the replica the sentinel promotes."""
    sentinel = redis_sentinel_from_env(environ=redis_sentinel.env, urls=[])
    layers = channel_layers(prefix="hung", redis_urls=[], sentinel=sentinel, kind="pubsub", workers=True)
    # A health check every second rather than 30: the test waits for its answer, not for it.
    layers["default"]["CONFIG"]["hosts"][0]["health_check_interval"] = 1
    settings.CHANNEL_LAYERS = layers
    pubsub, core = get_channel_layer(), get_channel_layer("worker")
    channel = await pubsub.new_channel()
    await pubsub.group_add("room", channel)
    await pubsub.group_send("room", {"type": "before"})
    assert (await pubsub.receive(channel))["type"] == "before"
    await core.send("jobs", {"type": "job"})
    assert (await core.receive("jobs"))["type"] == "job"
    # Waiting for the next job (BZPOPMIN) on the primary as it stops.
    job = asyncio.create_task(core.receive("jobs"))

    stopped = time.monotonic()
    os.kill(redis_sentinel.primary.process.pid, signal.SIGSTOP)
    try:
        # The health check's interval and grace; a reconnect made before the promotion
        # (down-after 1 s) reached the stopped primary again, and waits out its read timeout.
        bound = 1 + HEALTH_CHECK_GRACE + READ_TIMEOUT + 5
        assert (await asyncio.wait_for(pubsub.receive(channel), timeout=bound))["type"] == LAYER_RECONNECTED
        assert await asyncio.to_thread(redis_sentinel.master_port) == redis_sentinel.replica.port
        await pubsub.group_send("room", {"type": "after"})
        assert (await asyncio.wait_for(pubsub.receive(channel), timeout=5))["type"] == "after"
        # The core layer: its read timeout, then the next connection asks the sentinel.
        await asyncio.wait_for(core.send("jobs", {"type": "next"}), timeout=bound)
        received = [(await asyncio.wait_for(job, timeout=bound))["type"]]
        # The first job may come again: its receipt never reached the stopped primary (at least once).
        if received == ["job"]:
            received.append((await asyncio.wait_for(core.receive("jobs"), timeout=bound))["type"])
        assert received[-1] == "next"
        assert time.monotonic() - stopped < 2 * bound
    finally:
        os.kill(redis_sentinel.primary.process.pid, signal.SIGCONT)
    await pubsub.flush()
    await core.flush()
