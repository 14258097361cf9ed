"""How every Redis client of a site reaches Redis: the servers REDIS_URL lists, or the
primary that Redis Sentinel names (REDIS_SENTINELS and REDIS_SENTINEL_MASTER).

With Sentinel no client holds the primary's address: each new connection asks a sentinel
where the primary is now, so after a failover (the primary lost for good, a replica
promoted in its place) the next reconnect reaches the new primary without a restart.

Both are described the way channels-redis reads them, as "hosts" entries: ``{"address":
url}`` for a URL, ``{"sentinels": [...], "master_name": ...}`` for Sentinel. The channel
layers (realtime_common.layers) take them as they are; the cache (realtime_common.cache)
and the chat's presence store build their clients from the same entries, here. Every
entry carries CONNECTION_OPTIONS, so every client's connections are alike.

The connections are plain TCP: there is no TLS to the sentinels or to the primary
(REDIS_URL with rediss:// has it, without failover).
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

# Seconds a client waits for a sentinel to answer before it asks the next one: a
# sentinel that is down must not hold up the search for the primary.
SENTINEL_TIMEOUT = 1.0
# Connections one pool opens to one Redis (every pool: each layer's, the presence
# store's, the sentinels' own), and how long a command waits for one of them to be
# free before it fails.
POOL_SIZE, POOL_WAIT = 200, 10.0
# Options of every connection to Redis, whichever client makes it: idle ones are
# probed, so a dropped one is noticed and replaced.
CONNECTION_OPTIONS = {"health_check_interval": 30, "socket_keepalive": True, "retry_on_timeout": True}


@dataclass(frozen=True, kw_only=True)
class RedisSentinel:
    """Where the sentinels are, and the name they know the primary by."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    # The database number on the primary, as a URL's /0 would give it.
    db: int = 0
    # The primary's and replicas' password (their requirepass), and the sentinels' own.
    password: str | None = None
    sentinel_password: str | None = None


def redis_sentinel_from_env(*, environ: Mapping[str, str], urls: list[str]) -> RedisSentinel | None:
    """The Sentinel settings of the environment; None without REDIS_SENTINELS.

    REDIS_URL and REDIS_SENTINELS together are an error rather than one silently
    winning: a site that half-moved to Sentinel would otherwise talk to a Redis that
    the next failover leaves behind.
    """
    addresses = [item.strip() for item in environ.get("REDIS_SENTINELS", "").split(",") if item.strip()]
    master = environ.get("REDIS_SENTINEL_MASTER", "").strip()
    if not addresses and not master:
        # Read by nothing else: a password that seems set but is not sent would fail as "NOAUTH" much later.
        if environ.get("REDIS_PASSWORD") or environ.get("REDIS_SENTINEL_PASSWORD"):
            raise ImproperlyConfigured(
                "REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD are for Sentinel: with REDIS_URL the password goes"
                " in the URL (redis://:password@host:6379/0)."
            )
        return None
    if not (addresses and master):
        raise ImproperlyConfigured(
            "Set both REDIS_SENTINELS (host:port,host:port) and REDIS_SENTINEL_MASTER, or neither."
        )
    if urls:
        raise ImproperlyConfigured("Set REDIS_URL or REDIS_SENTINELS, not both: with Sentinel, it names the primary.")
    sentinels = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ImproperlyConfigured(f"REDIS_SENTINELS: {address!r} is not host:port")
        # An IPv6 address is written in brackets ([::1]:26379); the socket wants it without.
        sentinels.append((host.removeprefix("[").removesuffix("]"), int(port)))
    db = environ.get("REDIS_SENTINEL_DB", "0").strip() or "0"
    if not db.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINEL_DB must be a database number, not {db!r}")
    return RedisSentinel(
        sentinels=tuple(sentinels),
        master=master,
        db=int(db),
        password=environ.get("REDIS_PASSWORD") or None,
        sentinel_password=environ.get("REDIS_SENTINEL_PASSWORD") or None,
    )


def redis_hosts(*, urls: list[str], sentinel: RedisSentinel | None) -> list[dict]:
    """The channels-redis "hosts" entries: one per URL, or the one primary Sentinel names; none: no Redis."""
    if sentinel is None:
        return [{"address": url, **CONNECTION_OPTIONS} for url in urls]
    return [
        {
            "sentinels": list(sentinel.sentinels),
            "master_name": sentinel.master,
            "db": sentinel.db,
            "password": sentinel.password,
            # The sentinels' own connections: channels-redis gives them none of the host's options.
            "sentinel_kwargs": {
                "password": sentinel.sentinel_password,
                "socket_timeout": SENTINEL_TIMEOUT,
                "socket_connect_timeout": SENTINEL_TIMEOUT,
                # As many as a pool of the primary: redis-py's default (100) fails at once beyond.
                "max_connections": POOL_SIZE,
            },
            **CONNECTION_OPTIONS,
        }
    ]


def redis_host_describe(*, host: dict) -> str:
    """A hosts entry for a log line, without its password."""
    if "address" in host:
        return redact_url(host["address"])
    sentinels = ", ".join(f"{name}:{port}" for name, port in host["sentinels"])
    return f"the primary {host['master_name']!r} (db {host['db']}) of the sentinels {sentinels}"


def redact_url(url: str) -> str:
    """A Redis URL without its password, fit for a log line."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{location}"


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """A Sentinel pool whose callers wait for a free connection, as BlockingConnectionPool's
    do, whose new connections share one question to the sentinels, and that closes its
    connections to the sentinels with its own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.master_lookup: asyncio.Task | None = None

    async def get_master_address(self):
        # Every new connection asks where the primary is: 180 opened at once (a burst of
        # commands on a fresh pool) asked 180 times at once, and those beyond the
        # sentinel clients' own pool failed with MasterNotFoundError. One question at a
        # time, whose answer all the connections waiting for it take.
        if self.master_lookup is None:
            self.master_lookup = asyncio.get_running_loop().create_task(super().get_master_address())
            self.master_lookup.add_done_callback(self.master_lookup_done)
        # Shielded: a caller cancelled (its consumer closed) leaves the answer to the others.
        return await asyncio.shield(self.master_lookup)

    def master_lookup_done(self, task: asyncio.Task) -> None:
        # The next connection asks again: after a failover, the answer has changed.
        self.master_lookup = None
        if not task.cancelled():
            task.exception()  # retrieved even when every caller was cancelled, so asyncio logs nothing

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        # Only when the pool is closed: a new primary disconnects the idle ones alone.
        if inuse_connections:
            await self.sentinel_manager.aclose()


def redis_pool_async(*, host: dict, max_connections: int, timeout: float, **options) -> BlockingConnectionPool:
    """A pool of asyncio connections to a hosts entry's Redis, whose commands wait up to
    ``timeout`` for one of its ``max_connections`` (redis-py's own pool fails at once)."""
    options |= {key: value for key, value in host.items() if key not in ("address", "sentinels", "master_name")}
    if "address" in host:
        return BlockingConnectionPool.from_url(
            host["address"], max_connections=max_connections, timeout=timeout, **options
        )
    sentinel_kwargs = options.pop("sentinel_kwargs")
    return BlockingSentinelConnectionPool(
        host["master_name"],
        Sentinel(host["sentinels"], sentinel_kwargs=sentinel_kwargs),
        max_connections=max_connections,
        timeout=timeout,
        **options,
    )


def redis_client_async(*, host: dict, max_connections: int, timeout: float, **options) -> redis.asyncio.Redis:
    """An asyncio client of a hosts entry's Redis (``options``: redis-py's, such as decode_responses)."""
    return redis.asyncio.Redis.from_pool(
        redis_pool_async(host=host, max_connections=max_connections, timeout=timeout, **options)
    )
