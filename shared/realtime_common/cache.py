"""The cache a site uses: Redis when there are Redis URLs, so every process of a
site shares it (rate limits, presence, coalescing); otherwise process memory."""


def caches(*, prefix: str, redis_urls: list[str]) -> dict:
    if not redis_urls:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": prefix}}
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # The first server only: Django reads further LOCATIONs as replicas, not shards.
            "LOCATION": redis_urls[0],
            "KEY_PREFIX": prefix,
            "OPTIONS": {"health_check_interval": 30, "socket_keepalive": True, "retry_on_timeout": True},
        }
    }
