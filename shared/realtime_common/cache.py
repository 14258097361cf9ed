"""The cache a site uses: Redis when there are Redis URLs or a Sentinel, so every
process of a site shares it (rate limits, presence, coalescing); otherwise process memory."""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.sentinel import Sentinel, SentinelConnectionPool

from .redis_servers import RedisSentinel, redis_hosts

# Options of every connection: idle ones are probed, so a dropped one is replaced.
CONNECTION_OPTIONS = {"health_check_interval": 30, "socket_keepalive": True, "retry_on_timeout": True}


def caches(*, prefix: str, redis_urls: list[str], sentinel: RedisSentinel | None = None) -> dict:
    hosts = redis_hosts(urls=redis_urls, sentinel=sentinel)
    if not hosts:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": prefix}}
    # The first server only: Django reads further LOCATIONs as replicas, not shards.
    host = hosts[0]
    if "address" in host:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": host["address"],
                "KEY_PREFIX": prefix,
                "OPTIONS": CONNECTION_OPTIONS,
            }
        }
    return {
        "default": {
            "BACKEND": "realtime_common.cache.SentinelRedisCache",
            "LOCATION": host["master_name"],
            "KEY_PREFIX": prefix,
            "OPTIONS": {
                "sentinels": host["sentinels"],
                "sentinel_kwargs": host["sentinel_kwargs"],
                "db": host["db"],
                "password": host["password"],
                **CONNECTION_OPTIONS,
            },
        }
    }


class SentinelRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, on the primary that Sentinel names (LOCATION: its
    name; OPTIONS: ``sentinels`` and ``sentinel_kwargs``, then redis-py's connection
    options). Each new connection asks a sentinel where the primary is: after a
    failover, the first command after the old connection broke reaches the new one."""

    def __init__(self, servers, *, sentinels, sentinel_kwargs=None, **options):
        super().__init__(servers, **options)
        self._sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)

    def _get_connection_pool(self, write):
        # One pool, on the primary, for reads too: a replica may not have the latest write yet.
        if not self._pools:
            self._pools[0] = SentinelConnectionPool(self._servers[0], self._sentinel, **self._pool_options)
        return self._pools[0]


class SentinelRedisCache(RedisCache):
    """Django's Redis cache through Sentinel (SentinelRedisCacheClient): Django has no such option."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SentinelRedisCacheClient
