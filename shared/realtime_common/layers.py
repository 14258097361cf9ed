"""The channel layer a site uses, from its Redis URLs."""


def channel_layers(*, prefix: str, redis_urls: list[str]) -> dict:
    """The channel layer: Redis when there are Redis URLs, otherwise in-process memory.

    Several URLs make channels-redis shard channels and groups across them. The
    in-memory layer only reaches consumers of the same process: enough for one
    `make run` process and for tests, never for several daphne processes.
    """
    if not redis_urls:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": url,
                        # Idle connections live for hours between messages: probe
                        # them so a dropped one is noticed and replaced.
                        "health_check_interval": 30,
                        "socket_keepalive": True,
                        "retry_on_timeout": True,
                        # redis-py 8 times reads out after 5 s by default: exactly as long
                        # as channels-redis blocks waiting for a message (BZPOPMIN, 5 s),
                        # so idle consumers and workers crashed at random. Keepalive and
                        # the health checks above notice dead connections instead.
                        "socket_timeout": None,
                    }
                    for url in redis_urls
                ],
                # Sites sharing one Redis never see each other's groups.
                "prefix": f"{prefix}:",
                # A message not received within a minute is dropped.
                "expiry": 60,
                # Group memberships of crashed processes disappear after a day.
                "group_expiry": 86400,
                # Messages waiting per channel before sends to it fail.
                "capacity": 1000,
            },
        }
    }


def channel_layer_description(layers: dict) -> str:
    backend = layers["default"]["BACKEND"]
    if backend.endswith("InMemoryChannelLayer"):
        return "in-memory channel layer (this process only; set REDIS_URL to use Redis)"
    hosts = ", ".join(redact_url(host["address"]) for host in layers["default"]["CONFIG"]["hosts"])
    return f"Redis channel layer at {hosts}"


def redact_url(url: str) -> str:
    """A Redis URL without its password, fit for a log line."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{location}"
