"""The cache a site uses: Redis when there are Redis URLs or a Sentinel, so every
process of a site shares it (rate limits, presence, coalescing); otherwise process memory."""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis import ConnectionPool, Redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from .redis_servers import RedisSentinel, redis_hosts


def caches(*, prefix: str, redis_urls: list[str], sentinel: RedisSentinel | None = None) -> dict:
    hosts = redis_hosts(urls=redis_urls, sentinel=sentinel)
    if not hosts:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": prefix}}
    # The first server only: Django reads further LOCATIONs as replicas, not shards.
    host = hosts[0]
    # Its connection options (redis_servers.CONNECTION_OPTIONS), and with Sentinel where the sentinels are.
    options = {key: value for key, value in host.items() if key not in ("address", "master_name")}
    if "address" in host:
        return {
            "default": {
                "BACKEND": "realtime_common.cache.KeptClientRedisCache",
                "LOCATION": host["address"],
                "KEY_PREFIX": prefix,
                "OPTIONS": options,
            }
        }
    return {
        "default": {
            "BACKEND": "realtime_common.cache.SentinelRedisCache",
            "LOCATION": host["master_name"],
            "KEY_PREFIX": prefix,
            "OPTIONS": options,
        }
    }


class KeptClientRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, keeping the redis-py client it makes for each connection
    pool: Django makes one for every cache call, and making one costs ~60 µs (redis-py builds
    its table of reply parsers each time), about as much as the call's round trip. A redis-py
    client may be shared by threads: each command takes a connection of the pool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[ConnectionPool, Redis] = {}  # by their pool (kept as long as this client)

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        if (client := self._clients.get(pool)) is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class KeptClientRedisCache(RedisCache):
    """Django's Redis cache with KeptClientRedisCacheClient (``caches`` names it for Redis URLs)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = KeptClientRedisCacheClient


# The Sentinel pools of this process, by their options. Django makes a cache client per
# context (each consumer's task has its own): with a Sentinel and pool each, 50 consumers
# held 50 connections to the sentinels and 50 pools. Built under the lock, once.
SENTINEL_POOLS: dict[str, SentinelConnectionPool] = {}
SENTINEL_POOLS_LOCK = threading.Lock()


def sentinel_pool_sync(*, master: str, sentinels: list, sentinel_kwargs: dict, options: dict) -> SentinelConnectionPool:
    """The process's one pool of synchronous connections to the primary ``master`` of ``sentinels``."""
    key = repr((master, sentinels, sorted(sentinel_kwargs.items()), sorted(options.items())))
    with SENTINEL_POOLS_LOCK:
        if key not in SENTINEL_POOLS:
            sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
            SENTINEL_POOLS[key] = SentinelConnectionPool(master, sentinel, **options)
        return SENTINEL_POOLS[key]


class SentinelRedisCacheClient(KeptClientRedisCacheClient):
    """Django's Redis cache client, on the primary that Sentinel names (LOCATION: its
    name; OPTIONS: ``sentinels`` and ``sentinel_kwargs``, then redis-py's connection
    options). Each new connection asks a sentinel where the primary is: after a
    failover, the first command after the old connection broke reaches the new one."""

    def __init__(self, servers, *, sentinels, sentinel_kwargs=None, **options):
        super().__init__(servers, **options)
        self._sentinels, self._sentinel_kwargs = sentinels, sentinel_kwargs or {}

    def _get_connection_pool(self, write):
        # One pool, on the primary, for reads too: a replica may not have the latest write yet.
        return sentinel_pool_sync(
            master=self._servers[0],
            sentinels=self._sentinels,
            sentinel_kwargs=self._sentinel_kwargs,
            options=self._pool_options,
        )


class SentinelRedisCache(KeptClientRedisCache):
    """Django's Redis cache through Sentinel (SentinelRedisCacheClient): Django has no such option."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SentinelRedisCacheClient
