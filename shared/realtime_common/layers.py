"""The channel layer a site uses, from its Redis URLs."""

from channels_redis.core import RedisChannelLayer
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio import BlockingConnectionPool

# Redis connections one process's core layer opens per Redis, and how long a
# command waits for one of them to be free before it fails.
POOL_SIZE, POOL_WAIT = 200, 10.0


class RedisCoreLayer(RedisChannelLayer):
    """channels-redis's core layer, whose commands wait for a free connection.

    redis-py 8 pools hold at most 100 connections and fail at once beyond
    (MaxConnectionsError): 3,000 sockets leaving together, each with a
    group_discard, crashed consumers by the thousand. A blocking pool queues them.
    """

    def create_pool(self, index):
        host = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(host.pop("address"), max_connections=POOL_SIZE, timeout=POOL_WAIT, **host)


# The two Redis layers of channels-redis, chosen per site by REDIS_CHANNEL_LAYER.
# "core": a sorted set per process in Redis; group_send writes the message once
#   per member channel and every delivery is a round trip (BZPOPMIN). Messages
#   wait in Redis (up to "expiry") for a process that is briefly away.
# "pubsub": group_send is one PUBLISH; each process subscribed to the group gets
#   it once and fans it out in memory. At most once: a message published while a
#   process is disconnected is lost to it, so a site on it must heal gaps itself.
LAYER_BACKENDS = {
    "core": "realtime_common.layers.RedisCoreLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


# The alias of the layer that carries jobs to `manage.py runworker --layer worker`.
WORKER_LAYER = "worker"


def channel_layers(*, prefix: str, redis_urls: list[str], kind: str = "core", workers: bool = False) -> dict:
    """The channel layer: Redis when there are Redis URLs, otherwise in-process memory.

    Several URLs make channels-redis shard channels and groups across them. The
    in-memory layer only reaches consumers of the same process: enough for one
    `make run` process and for tests, never for several daphne processes.

    ``workers`` adds the WORKER_LAYER alias, always the core layer: a job sent
    while no worker listens must wait in Redis for one, which pub/sub cannot do.
    """
    layers = {"default": channel_layer(prefix=prefix, redis_urls=redis_urls, kind=kind)}
    if workers:
        layers[WORKER_LAYER] = channel_layer(prefix=prefix, redis_urls=redis_urls, kind="core")
    return layers


def channel_layer(*, prefix: str, redis_urls: list[str], kind: str) -> dict:
    if not redis_urls:
        return {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    if kind not in LAYER_BACKENDS:
        raise ImproperlyConfigured(f"REDIS_CHANNEL_LAYER must be one of {', '.join(LAYER_BACKENDS)}, not {kind!r}")
    hosts = [
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
    ]
    # Sites sharing one Redis never see each other's groups.
    config = {"hosts": hosts, "prefix": f"{prefix}:"}
    if kind == "core":
        config |= {
            # A message not received within a minute is dropped.
            "expiry": 60,
            # Group memberships of crashed processes disappear after a day.
            "group_expiry": 86400,
            # Messages waiting per channel before sends to it fail.
            "capacity": 1000,
        }
    return {"BACKEND": LAYER_BACKENDS[kind], "CONFIG": config}


def channel_layer_description(layers: dict) -> str:
    backend = layers["default"]["BACKEND"]
    if backend.endswith("InMemoryChannelLayer"):
        return "in-memory channel layer (this process only; set REDIS_URL to use Redis)"
    hosts = ", ".join(redact_url(host["address"]) for host in layers["default"]["CONFIG"]["hosts"])
    kind = next(kind for kind, path in LAYER_BACKENDS.items() if path == backend)
    return f"Redis {kind} channel layer at {hosts}"


def redact_url(url: str) -> str:
    """A Redis URL without its password, fit for a log line."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{location}"
