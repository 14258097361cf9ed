"""The channel layer a site uses, from its Redis URLs or its Sentinel (realtime_common.redis_servers)."""

import asyncio
import logging
import os
import time
from collections.abc import Callable

import redis.asyncio
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, decode_hosts
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .loops import LightQueue, loop_local
from .metrics import channel_layer_reconnected, channel_layer_watch
from .redis_servers import POOL_SIZE, POOL_WAIT, RedisSentinel, redis_host_describe, redis_hosts, redis_pool_async

logger = logging.getLogger(__name__)

# What a Redis that is down or restarting raises, whichever layer of redis-py or asyncio notices.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)
# How long the core layer keeps a group membership that nobody refreshed (seconds).
# Every process refreshes its own sockets' memberships (RedisCoreLayer), so only
# those of a process that died expire.
GROUP_EXPIRY = int(os.environ.get("REDIS_GROUP_EXPIRY", "86400"))
# The message every consumer of a process gets when its pub/sub subscriptions are
# back after Redis was away: group messages sent meanwhile were lost to it.
LAYER_RECONNECTED = "layer.reconnected"
# Retries of a lost pub/sub connection: the first at once (a blip), then every second,
# so that group messages flow again within about a second of Redis coming back.
RESUBSCRIBE_DELAYS = (0.1, 0.25, 0.5, 1.0)
# How long a layer's command waits for Redis's answer before its connection counts as
# lost (and is made again, through Sentinel to the primary of now). A primary that hangs
# (a stopped process, a machine gone without a TCP reset) answers nothing, not even an
# error: without it a publish, or the core layer's BZPOPMIN, waited forever. Longer than
# the BZPOPMIN, which channels-redis blocks 5 s for an idle consumer (channels_redis#422:
# redis-py 8's default of 5 s made idle consumers and workers crash at random).
READ_TIMEOUT = 15.0
# A pub/sub subscriber reads nothing while no message comes: redis-py sends it a health
# check after health_check_interval of silence. One still unanswered this long after it
# was due: the connection is lost.
HEALTH_CHECK_GRACE = 5.0


def error_text(error: BaseException) -> str:
    """An error for a log line: its class and message (redis-py's repr is neither)."""
    return f"{type(error).__name__}: {error}"


class RedisCoreLayer(RedisChannelLayer):
    """channels-redis's core layer, whose commands wait for a free connection, and
    whose group memberships last as long as their sockets.

    redis-py 8 pools hold at most 100 connections and fail at once beyond
    (MaxConnectionsError): 3,000 sockets leaving together, each with a
    group_discard, crashed consumers by the thousand. A blocking pool queues them.

    channels-redis drops a membership group_expiry seconds after it was added: a
    socket open longer than that stopped receiving its groups' messages. Each
    process re-adds its own sockets' memberships three times per group_expiry, in
    one task per event loop, so only those of a dead process (or of a consumer
    that crashed) expire. A group_discard waits for the refresh's pipeline under way
    on its Redis, if any, so that its ZREM lands after that pipeline's ZADD, never
    before; discards never wait for each other (a deploy closes thousands of sockets
    at once: one round trip after another would take minutes).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memberships: dict[str, set[str]] = {}  # group -> this process's channels in it
        self.refreshers: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}
        # By event loop (an event's waiters belong to one), then by Redis: the refresh
        # pipeline under way on that Redis, set once it is done. A group_discard waits for
        # it; a group_add need not: the refresh only adds, so the two land in either order.
        self.refreshing = loop_local(dict)
        self.refresh_failing = False

    def create_pool(self, index):
        return redis_pool_async(host=self.hosts[index], max_connections=POOL_SIZE, timeout=POOL_WAIT)

    def channel_is_local(self, channel: str) -> bool:
        return f"{self.client_prefix}!" in channel

    async def group_add(self, group, channel):
        await super().group_add(group, channel)
        if self.channel_is_local(channel):
            self.memberships.setdefault(group, set()).add(channel)
            self.refresher_ensure()

    async def group_discard(self, group, channel):
        # Out of the memberships first: a refresh pipeline made from now on leaves it out.
        channels = self.memberships.get(group)
        if channels is not None:
            channels.discard(channel)
            if not channels:
                del self.memberships[group]
        # One made before may re-add it: the ZREM goes once that pipeline is done.
        if (refresh := self.refreshing().get(self.consistent_hash(group))) is not None:
            await refresh.wait()
        await super().group_discard(group, channel)

    async def receive(self, channel):
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            # Channels cancels a consumer's receive only when the consumer ends: what it
            # never discarded (it crashed) leaves Redis, and is no longer refreshed.
            if self.channel_is_local(channel):
                await self.channel_release(channel)
            raise

    async def channel_release(self, channel: str) -> None:
        """The consumer of ``channel`` has ended: from its receive cancelled, and from MessagesLoop
        (which alone releases it if it was not receiving then: it had two messages out,
        realtime_common.loops). Its memberships are no longer refreshed, and are removed from Redis
        at once: a consumer that crashed never ran its group_discard, and its channel, left in its
        groups' sorted sets until GROUP_EXPIRY (a day), kept getting their messages, which this
        process's shared receive loop buffered for it (up to ``capacity`` per group message).
        The ZREMs are awaited by the caller, not left to a task of their own: a task would outlive
        a consumer that ends with its event loop (a test's, a worker's), and fail there. A caller
        cancelled meanwhile (messages_dispatch cancels again a source slow to end) cancels them:
        those memberships then expire after GROUP_EXPIRY, as before. Twice is as once."""
        if groups := self.channel_forget(channel):
            await self.memberships_remove(channel=channel, groups=groups)
        # After the ZREMs: a message sent before them may still have been buffered for it.
        self.receive_buffer.pop(channel, None)

    async def memberships_remove(self, *, channel: str, groups: list[str]) -> None:
        # group_discard: each ZREM after the refresh pipeline under way on its Redis. Together,
        # not one round trip after another: a deploy releases thousands of channels at once.
        results = await asyncio.gather(
            *(self.group_discard(group, channel) for group in groups), return_exceptions=True
        )
        for group, result in zip(groups, results, strict=True):
            if isinstance(result, REDIS_DOWN):
                # The consumer has ended whatever happens here: the membership expires instead.
                logger.warning("channel layer: cannot remove %s from group %s (%s)", channel, group, error_text(result))
            elif isinstance(result, BaseException):
                raise result

    def channel_forget(self, channel: str) -> list[str]:
        """Stop refreshing ``channel``'s memberships; the groups it was in."""
        groups = [group for group, channels in self.memberships.items() if channel in channels]
        for group in groups:
            self.memberships[group].discard(channel)
            if not self.memberships[group]:
                del self.memberships[group]
        return groups

    def refresher_ensure(self) -> None:
        loop = asyncio.get_running_loop()
        task = self.refreshers.get(loop)
        if task is None or task.done():
            for stale in [other for other in self.refreshers if other.is_closed()]:
                del self.refreshers[stale]
            self.refreshers[loop] = loop.create_task(self.memberships_refresh())

    async def memberships_refresh(self) -> None:
        interval = max(self.group_expiry / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.memberships_add_again()
            except REDIS_DOWN as error:
                if not self.refresh_failing:
                    self.refresh_failing = True
                    logger.warning("channel layer: cannot refresh group memberships (%s); retrying", error_text(error))
                continue
            if self.refresh_failing:
                self.refresh_failing = False
                logger.info("channel layer: group memberships refreshed again")

    async def memberships_add_again(self, *, batch: int = 500) -> None:
        """Re-add every membership of this process with the current time, one pipeline per batch of groups."""
        groups = list(self.memberships)
        for start in range(0, len(groups), batch):
            by_shard: dict[int, list[str]] = {}
            for group in groups[start : start + batch]:
                by_shard.setdefault(self.consistent_hash(group), []).append(group)
            for index, shard_groups in by_shard.items():
                # The channels as they are now, not when the refresh began: one discarded while an
                # earlier pipeline was under way is not re-added.
                members = [(group, self.memberships.get(group, ())) for group in shard_groups]
                # From the snapshot on, with no await in between: a group_discard of a channel in it
                # waits until this pipeline is done, so that its ZREM lands after this ZADD.
                done = self.refreshing()[index] = asyncio.Event()
                try:
                    now = time.time()
                    async with self.connection(index).pipeline(transaction=False) as pipeline:
                        for group, channels in members:
                            if channels:
                                key = self._group_key(group)
                                pipeline.zadd(key, dict.fromkeys(channels, now))
                                pipeline.expire(key, self.group_expiry)
                        await pipeline.execute()
                finally:
                    del self.refreshing()[index]
                    done.set()


class ResilientShard(RedisSingleShardConnection):
    """One Redis of the pub/sub layer, whose subscriptions outlive a Redis restart.

    channels-redis's receive task logs a traceback every second while Redis is
    away, and a subscribe or unsubscribe made meanwhile raises into the consumer
    (its socket dies). Here an outage is logged once when it begins and once when
    it ends; subscriptions made or dropped meanwhile are recorded and applied once
    Redis is back; and then every consumer of the process gets LAYER_RECONNECTED,
    because the group messages published in between were lost to it.
    """

    def __init__(self, host, channel_layer):
        super().__init__(host, channel_layer)
        self.outage_started: float | None = None
        self.resync = False  # Redis's subscriptions may differ from _subscribed_to
        self.reconnected = False  # the connection was made again: messages may have been lost
        self.hooked = None  # the connection whose reconnects on_connect() hears of
        channel_layer_watch(connection=self)  # realtime_channel_layer_up reads ``lost``

    @property
    def lost(self) -> bool:
        """Redis is away (from the first failure until the connection works again)."""
        return self.outage_started is not None

    async def publish(self, channel, message):
        async with self._lock:
            self._ensure_redis()
            # A primary that hangs answers nothing: a publish gives up after READ_TIMEOUT, as
            # on a lost connection (redis-py drops a connection whose command was cancelled),
            # rather than hold the lock, and every subscribe and publish behind it, for good.
            await asyncio.wait_for(self._redis.publish(channel, message), READ_TIMEOUT)

    async def subscribe(self, channel):
        async with self._lock:
            if channel in self._subscribed_to:
                return
            self._ensure_redis()
            self._ensure_receiver()
            self._subscribed_to.add(channel)
            try:
                await self._pubsub.subscribe(channel)
            except REDIS_DOWN as error:
                self.outage_begin(error)

    async def unsubscribe(self, channel):
        async with self._lock:
            if channel not in self._subscribed_to:
                return
            self._subscribed_to.discard(channel)
            self._ensure_redis()
            self._ensure_receiver()
            try:
                await self._pubsub.unsubscribe(channel)
            except REDIS_DOWN as error:
                self.outage_begin(error)

    async def _do_receiving(self):
        failures = 0
        while True:
            try:
                if self.resync:
                    await self.subscriptions_sync()
                if self._pubsub is not None and self._pubsub.subscribed:
                    self.connection_hook()
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    await self.silence_check()
                else:
                    message = None
                    await asyncio.sleep(0.1)
                if self.outage_started is not None or self.reconnected:
                    self.outage_end()
                failures = 0
                self._receive_message(message)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except REDIS_DOWN as error:
                self.outage_begin(error)
                await asyncio.sleep(RESUBSCRIBE_DELAYS[min(failures, len(RESUBSCRIBE_DELAYS) - 1)])
                failures += 1
            except Exception:
                logger.exception("channel layer: unexpected error in the pub/sub receive task")
                await asyncio.sleep(1)

    async def subscriptions_sync(self) -> None:
        """Make Redis's subscriptions this process's again; raises while Redis is away."""
        async with self._lock:
            self._ensure_redis()
            current = {name.decode() if isinstance(name, bytes) else name for name in self._pubsub.channels}
            if missing := self._subscribed_to - current:
                await self._pubsub.subscribe(*missing)
            if stale := current - self._subscribed_to:
                await self._pubsub.unsubscribe(*stale)
            self.resync = False

    async def silence_check(self) -> None:
        """Raise (a lost connection, dropped) when the health check went unanswered too long."""
        connection = self._pubsub.connection
        # redis-py moves next_health_check on at every reply it reads (-1: none read yet).
        if connection is None or connection.next_health_check < 0:
            return
        late = asyncio.get_running_loop().time() - connection.next_health_check
        if late > HEALTH_CHECK_GRACE:
            # Dropped without a word to the hung server, and its PubSub with it: a PubSub
            # reconnects to the address it had (redis-py asks Sentinel only in connect()).
            # The resync subscribes a new one to every channel, on a connection from the
            # pool, which asks Sentinel where the primary is now.
            async with self._lock:
                await connection.disconnect(nowait=True)
                await self._pubsub.aclose()
                self._pubsub = self._redis.pubsub()
            raise RedisTimeoutError(f"no answer to the health check {late:.0f} s after it was due")

    def _ensure_redis(self):
        # The pool every Redis client of the site makes (realtime_common.redis_servers).
        if self._redis is None:
            pool = redis_pool_async(host=self.host, max_connections=POOL_SIZE, timeout=POOL_WAIT)
            self._redis = redis.asyncio.Redis(connection_pool=pool)
            self._pubsub = self._redis.pubsub()

    def connection_hook(self) -> None:
        connection = self._pubsub.connection
        if connection is not None and connection is not self.hooked:
            connection.register_connect_callback(self.on_connect)
            self.hooked = connection

    async def on_connect(self, connection) -> None:
        # redis-py reconnects by itself (and resubscribes) when it can: a restart
        # quick enough never raises, but still loses what was published meanwhile.
        self.reconnected = True

    def outage_begin(self, error: BaseException) -> None:
        self.resync = True
        if self.outage_started is None:
            self.outage_started = time.monotonic()
            logger.warning(
                "channel layer: lost Redis at %s (%s); group messages stop until it is back",
                redis_host_describe(host=self.host),
                error_text(error),
            )

    def outage_end(self) -> None:
        told = self.consumers_tell()
        channel_layer_reconnected()
        if self.outage_started is not None:
            logger.info(
                "channel layer: Redis at %s is back after %.1f s; %d subscriptions restored, %d consumers told to catch up",
                redis_host_describe(host=self.host),
                time.monotonic() - self.outage_started,
                len(self._subscribed_to),
                told,
            )
        else:
            logger.info("channel layer: reconnected to Redis; %d consumers told to catch up", told)
        self.outage_started, self.reconnected = None, False

    def _receive_message(self, message):
        """Hand a published message to its channel's queue, or to every member of its group,
        decoded once for all of them. channels-redis puts the raw bytes in each member's
        queue, and each member's receive decodes them again: a msgpack decode per socket of
        the process, 2 % of a liveblog frame's CPU instructions (callgrind, 200 sockets). The
        queues now hold the decoded message, and RedisPubSubLayer.deserialize only copies it
        per receive. A message that cannot be decoded is logged once and dropped: it must not
        stop this task, which receives for every socket of the process."""
        if message is None:
            return
        name, layer = message["channel"], self.channel_layer
        if isinstance(name, bytes):
            name = name.decode()
        if (queue := layer.channels.get(name)) is not None:
            queues = [queue]
        else:
            queues = [layer.channels[member] for member in layer.groups.get(name, ()) if member in layer.channels]
        if not queues:
            return
        try:
            decoded = layer.channel_layer.message_decode(data=message["data"])
        except Exception as error:  # noqa: BLE001 - msgpack, JSON and decryption each raise their own classes
            logger.error("channel layer: dropped a message to %s that cannot be decoded (%s)", name, error_text(error))
            return
        for queue in queues:
            queue_put(queue=queue, message=decoded)

    def consumers_tell(self) -> int:
        """Put LAYER_RECONNECTED in the queue of every consumer of this process (their
        channels are named by new_channel(): "<prefix>specific.<id>")."""
        layer = self.channel_layer
        prefix = f"{layer.prefix}specific."
        # Decoded already, as _receive_message leaves what it queues.
        message = {"type": LAYER_RECONNECTED}
        told = 0
        for name, queue in list(layer.channels.items()):
            if name.startswith(prefix):
                queue_put(queue=queue, message=message)
                told += 1
        return told


def queue_put(*, queue: LightQueue, message: dict) -> None:
    """Put the message in a consumer's queue, whose reader may be a consumer's loop (channel_push): a reader
    that raises is logged, and the group's other members, served by the same task, still get the message."""
    try:
        queue.put_nowait(message)
    except Exception:
        logger.exception("channel layer: a consumer's reader failed on a message")


class ResilientLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts=None, *args, **kwargs):
        super().__init__(hosts, *args, **kwargs)
        self._shards = [ResilientShard(host, self) for host in decode_hosts(hosts)]
        self.unsubscribing: dict[str, asyncio.Task] = {}  # channel -> its unsubscribe under way (channel_release)

    async def _subscribe_to_channel(self, channel):
        # channels-redis's, with a LightQueue for the channel's messages, not an asyncio.Queue:
        # every consumer has a channel, so every open socket kept one (3.3 KB, empty). Only
        # ResilientShard puts into it, and only the consumer reads it (receive, or channel_push).
        # A release of the same name still under way first: its UNSUBSCRIBE, landing after this
        # SUBSCRIBE, would leave the channel unsubscribed (shielded: it must finish either way).
        if (pending := self.unsubscribing.get(channel)) is not None:
            await asyncio.shield(pending)
        self.channels[channel] = LightQueue()
        await self._get_shard(channel).subscribe(channel)

    async def receive(self, channel):
        # channels-redis's, whose cancellation (the consumer's end) unsubscribes the channel
        # through channel_release, not its own clean-up: that one is cut short by a second
        # cancellation (messages_dispatch's, CANCEL_AGAIN_AFTER), logs an error with its
        # traceback, and, stopped while it waits for the lock, leaves the channel subscribed for good.
        if channel not in self.channels:
            await self._subscribe_to_channel(channel)
        try:
            message = await self.channels[channel].get()
        except asyncio.CancelledError:
            await self.channel_release(channel)
            raise
        return self.channel_layer.deserialize(message)

    async def channel_push(self, channel: str, deliver: Callable[[dict], None]) -> None:
        """Subscribe the channel, then call ``deliver`` with each of its messages (a copy, as receive
        gives) as it comes, rather than keep it for a receive: a consumer's loop (messages_dispatch's
        pushed sources). Its end is the consumer's: ``channel_release`` drops the channel and its reader."""
        if channel not in self.channels:
            await self._subscribe_to_channel(channel)
        deserialize = self.channel_layer.deserialize
        self.channels[channel].read_by(lambda message: deliver(deserialize(message)))

    async def channel_release(self, channel: str) -> None:
        """Drop the channel of a consumer that has ended, and its subscription: from MessagesLoop once
        the consumer ended (its loop had the channel's messages pushed: channel_push), and from a
        receive cancelled (a consumer that reads the channel with receive). The unsubscribe, which
        waits for its Redis's lock behind publishes, runs in a task of its own: a caller cancelled
        meanwhile ends at once, and the unsubscribe still finishes (interrupted, it left the channel
        subscribed for good). A second call, while it is under way, waits for it again: the consumer
        ends once its channel is released.

        A consumer that crashed never ran its group_discard: the channel also leaves every group
        it is still in, and a group left empty is unsubscribed (as channels-redis's group_discard
        does), or that group stayed subscribed for the process's life. Finding them is a pass over
        this process's groups (a set lookup each: about 50 ns, so 50 us per release with 1,000
        groups); a consumer that discarded its groups is in none, and costs only that pass."""
        if self.channels.pop(channel, None) is not None:
            emptied = []
            for group_channel in [name for name, members in self.groups.items() if channel in members]:
                self.groups[group_channel].discard(channel)
                if not self.groups[group_channel]:
                    del self.groups[group_channel]
                    emptied.append(group_channel)
            unsubscribe = asyncio.ensure_future(self.channel_unsubscribe(channel=channel, groups=emptied))
            self.unsubscribing[channel] = unsubscribe
            unsubscribe.add_done_callback(lambda _: self.unsubscribing.pop(channel, None))
        if (unsubscribe := self.unsubscribing.get(channel)) is not None:
            await asyncio.shield(unsubscribe)

    async def channel_unsubscribe(self, *, channel: str, groups: list[str]) -> None:
        # One after another: each waits for its Redis's lock, and ResilientShard records one made
        # while Redis is away, to apply once it is back (it raises nothing for an outage).
        for group_channel in groups:
            await self._get_shard(group_channel).unsubscribe(group_channel)
        await self._get_shard(channel).unsubscribe(channel)


class RedisPubSubLayer(RedisPubSubChannelLayer):
    """channels-redis's pub/sub layer, made to come through a Redis restart (ResilientShard),
    which decodes a message once per process, not once per member socket."""

    def message_decode(self, *, data: bytes) -> dict:
        return self._serializer.deserialize(data)

    def deserialize(self, message: dict) -> dict:
        """What a consumer's receive gets from its queue: the message ResilientShard decoded
        once for every member of the group, as a copy of its own: a consumer that adds, drops
        or replaces its message's keys changes no other member's. The values are shared (a
        deep copy per member would cost what decoding did): a handler reads them, never
        changes them in place."""
        return dict(message)

    async def channel_release(self, channel: str) -> None:
        await self._get_layer().channel_release(channel)

    async def channel_push(self, channel: str, deliver: Callable[[dict], None]) -> None:
        await self._get_layer().channel_push(channel, deliver)

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = self._layers[loop] = ResilientLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
            return layer


# The two Redis layers of channels-redis, chosen per site by REDIS_CHANNEL_LAYER.
# "core": a sorted set per process in Redis; group_send writes the message once
#   per member channel and every delivery is a round trip (BZPOPMIN). Messages
#   wait in Redis (up to "expiry") for a process that is briefly away.
# "pubsub": group_send is one PUBLISH; each process subscribed to the group gets
#   it once and fans it out in memory. At most once: a message published while a
#   process is disconnected is lost to it, so a site on it must heal gaps itself.
LAYER_BACKENDS = {
    "core": "realtime_common.layers.RedisCoreLayer",
    "pubsub": "realtime_common.layers.RedisPubSubLayer",
}


# The alias of the layer that carries jobs to `manage.py runworker --layer worker`.
WORKER_LAYER = "worker"


def channel_layers(
    *,
    prefix: str,
    redis_urls: list[str],
    sentinel: RedisSentinel | None = None,
    kind: str = "core",
    workers: bool = False,
) -> dict:
    """The channel layer: Redis when there are Redis URLs or a Sentinel, otherwise in-process memory.

    Several URLs make channels-redis shard channels and groups across them; a
    Sentinel (realtime_common.redis_servers) is one Redis, wherever its primary is
    now. The in-memory layer only reaches consumers of the same process: enough for
    one `make run` process and for tests, never for several daphne processes.

    ``workers`` adds the WORKER_LAYER alias, always the core layer: a job sent
    while no worker listens must wait in Redis for one, which pub/sub cannot do.
    It uses the first Redis only: the core layer sends to a named channel
    ("thumbnails") on each Redis in turn, but a worker's receive waits on one of
    them until a message comes there, so over two a job could wait for the next
    job, or the worker's tick (seen in `make e2e-sharded`). Jobs are few.
    """
    hosts = redis_hosts(urls=redis_urls, sentinel=sentinel)
    layers = {"default": channel_layer(prefix=prefix, hosts=hosts, kind=kind)}
    if workers:
        layers[WORKER_LAYER] = channel_layer(prefix=prefix, hosts=hosts[:1], kind="core")
    return layers


def channel_layer(*, prefix: str, hosts: list[dict], kind: str) -> dict:
    if not hosts:
        return {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    if kind not in LAYER_BACKENDS:
        raise ImproperlyConfigured(f"REDIS_CHANNEL_LAYER must be one of {', '.join(LAYER_BACKENDS)}, not {kind!r}")
    hosts = [
        {
            # With every client's connection options (redis_servers.CONNECTION_OPTIONS).
            **host,
            # The core layer's reads: not redis-py 8's 5 s, nor none at all (READ_TIMEOUT).
            # The pub/sub layer's subscriber polls with a timeout of its own, which a socket
            # timeout turns into a reconnect at every poll (each one a LAYER_RECONNECTED to
            # every consumer): it is watched by its health checks (silence_check), and its
            # publish is bounded by ResilientShard.publish.
            "socket_timeout": READ_TIMEOUT if kind == "core" else None,
        }
        for host in hosts
    ]
    # Sites sharing one Redis never see each other's groups.
    config = {"hosts": hosts, "prefix": f"{prefix}:"}
    if kind == "core":
        config |= {
            # A message not received within a minute is dropped.
            "expiry": 60,
            # Group memberships of crashed processes disappear after this
            # (a day); live ones are refreshed (RedisCoreLayer).
            "group_expiry": GROUP_EXPIRY,
            # Messages waiting per channel before sends to it fail.
            "capacity": 1000,
        }
    return {"BACKEND": LAYER_BACKENDS[kind], "CONFIG": config}


def channel_layer_description(layers: dict) -> str:
    backend = layers["default"]["BACKEND"]
    if backend.endswith("InMemoryChannelLayer"):
        return "in-memory channel layer (this process only; set REDIS_URL or REDIS_SENTINELS to use Redis)"
    hosts = ", ".join(redis_host_describe(host=host) for host in layers["default"]["CONFIG"]["hosts"])
    kind = next(kind for kind, path in LAYER_BACKENDS.items() if path == backend)
    return f"Redis {kind} channel layer at {hosts}"
