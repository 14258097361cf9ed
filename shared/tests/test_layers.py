"""The core layer's refresh of this process's group memberships (RedisCoreLayer), against a real Redis:
a group_discard that runs while a refresh is under way is not undone by it, nor a group_add after it.
The pub/sub layer's decode, once per process (ResilientShard._receive_message), and its channels' queues."""

import asyncio
import contextlib
from collections.abc import Coroutine

import pytest
import redis
import redis.asyncio
from channels.layers import get_channel_layer
from redis.asyncio.client import Pipeline

from realtime_common.layers import LAYER_RECONNECTED, RedisCoreLayer, RedisPubSubLayer, channel_layers
from realtime_common.loops import LightQueue

# Long enough for a round trip to Redis on a busy machine; a wait only runs out when something is wrong.
WAIT = 5


@pytest.fixture
async def core_layer(redis_server):
    redis.Redis.from_url(redis_server).flushall()
    layer = RedisCoreLayer(hosts=[redis_server], prefix="refresh-test:")
    yield layer
    for task in layer.refreshers.values():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await layer.close_pools()


class HeldPipelines:
    """Holds each pipeline sent (the refresh's: group_add and group_discard send none) at its
    await point until ``release()``, while ``hold`` is on."""

    def __init__(self, monkeypatch):
        self.held: asyncio.Queue[asyncio.Event] = asyncio.Queue()
        self.hold, self.current = True, asyncio.Event()
        execute = Pipeline.execute

        async def held_execute(pipeline, *args, **kwargs):
            if self.hold:
                release = asyncio.Event()
                self.held.put_nowait(release)
                await release.wait()
            return await execute(pipeline, *args, **kwargs)

        monkeypatch.setattr(Pipeline, "execute", held_execute)

    async def wait(self) -> None:
        """Until the next pipeline is held."""
        self.current = await asyncio.wait_for(self.held.get(), timeout=WAIT)

    def release(self, *, hold: bool) -> None:
        """Let the held pipeline go; ``hold``: whether to hold the next ones."""
        self.hold = hold
        self.current.set()


async def refresh_start_held(*, monkeypatch, refresh: Coroutine) -> tuple[HeldPipelines, asyncio.Future]:
    """Start ``refresh`` with every pipeline held, once its first pipeline is held: the holder
    (to release it) and the refresh under way."""
    held = HeldPipelines(monkeypatch)
    under_way = asyncio.ensure_future(refresh)
    await held.wait()
    return held, under_way


async def group_members(layer: RedisCoreLayer, group: str) -> list[str]:
    return [member.decode() for member in await layer.connection(0).zrange(layer._group_key(group), 0, -1)]


async def test_a_channel_discarded_while_the_refresh_re_adds_it_stays_discarded(core_layer, monkeypatch):
    """The lock: the discard waits for the refresh's pipeline, so its ZREM lands after that ZADD
    (without, it goes first: the refresh's pipeline opens a connection of its own)."""
    stay, leave = await core_layer.new_channel(), await core_layer.new_channel()
    for channel in (stay, leave):
        await core_layer.group_add("room", channel)
    held, refresh = await refresh_start_held(monkeypatch=monkeypatch, refresh=core_layer.memberships_add_again())
    discard = asyncio.ensure_future(core_layer.group_discard("room", leave))
    held.release(hold=False)
    await asyncio.wait_for(asyncio.gather(refresh, discard), timeout=WAIT)
    assert await group_members(core_layer, "room") == [stay]


async def test_a_group_discarded_while_an_earlier_pipeline_ran_is_not_re_added(core_layer, monkeypatch):
    """Each pipeline takes the channels as they are when it starts: the second group's,
    made once the discard is done (it waited for the first), re-adds nothing."""
    channel = await core_layer.new_channel()
    for group in ("first", "second"):
        await core_layer.group_add(group, channel)
    one_group_each = core_layer.memberships_add_again(batch=1)  # one group per pipeline
    held, refresh = await refresh_start_held(monkeypatch=monkeypatch, refresh=one_group_each)
    discard = asyncio.ensure_future(core_layer.group_discard("second", channel))
    held.release(hold=False)
    await asyncio.wait_for(asyncio.gather(refresh, discard), timeout=WAIT)
    assert (await group_members(core_layer, "first"), await group_members(core_layer, "second")) == ([channel], [])


async def test_a_channel_that_leaves_and_rejoins_during_a_refresh_stays_a_member(core_layer, monkeypatch):
    """Whatever the refresh sends after the leave (nothing, or a ZREM of what it re-added)
    is sent before the rejoin's ZADD, which lands last."""
    channel = await core_layer.new_channel()
    await core_layer.group_add("room", channel)
    held, refresh = await refresh_start_held(monkeypatch=monkeypatch, refresh=core_layer.memberships_add_again())
    leave = asyncio.ensure_future(core_layer.group_discard("room", channel))
    held.release(hold=True)
    # The rejoin once the leave is done: while the refresh's next pipeline is held, if it sends one.
    next_held = asyncio.ensure_future(held.wait())
    await asyncio.wait([next_held, refresh], timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.wait_for(leave, timeout=WAIT)
    await core_layer.group_add("room", channel)
    if next_held.done():
        held.release(hold=False)
    else:
        next_held.cancel()
    await asyncio.wait_for(refresh, timeout=WAIT)
    assert (await group_members(core_layer, "room"), core_layer.memberships) == ([channel], {"room": {channel}})


async def test_discards_do_not_wait_for_each_other(core_layer, monkeypatch):
    """A deploy closes thousands of sockets at once: their ZREMs go together, not one round trip after
    another. The first discard's ZREM is held; the second's, on the same Redis, lands meanwhile."""
    first, second = await core_layer.new_channel(), await core_layer.new_channel()
    for channel in (first, second):
        await core_layer.group_add("room", channel)
    first_sent, release = asyncio.Event(), asyncio.Event()
    zrem = redis.asyncio.Redis.zrem

    async def held_zrem(client, name, *values):
        if first in values:
            first_sent.set()
            await release.wait()
        return await zrem(client, name, *values)

    monkeypatch.setattr(redis.asyncio.Redis, "zrem", held_zrem)
    leave_first = asyncio.ensure_future(core_layer.group_discard("room", first))
    await asyncio.wait_for(first_sent.wait(), timeout=WAIT)
    await asyncio.wait_for(core_layer.group_discard("room", second), timeout=WAIT)
    assert await group_members(core_layer, "room") == [first]
    release.set()
    await asyncio.wait_for(leave_first, timeout=WAIT)
    assert await group_members(core_layer, "room") == []


# -- the pub/sub layer: a message decoded once per process -------------------------------------


@pytest.fixture
async def pubsub_layer(redis_server, settings):
    settings.CHANNEL_LAYERS = channel_layers(prefix="decode-test", redis_urls=[redis_server], kind="pubsub")
    layer = get_channel_layer()
    yield layer
    await layer.flush()


async def members_make(layer: RedisPubSubLayer, *, group: str, count: int) -> list[str]:
    channels = [await layer.new_channel() for _ in range(count)]
    for channel in channels:
        await layer.group_add(group, channel)
    return channels


async def test_a_group_message_is_decoded_once_per_process_not_once_per_member(pubsub_layer, monkeypatch):
    members = await members_make(pubsub_layer, group="room", count=3)
    decodes = []
    deserialize = pubsub_layer._serializer.deserialize

    def counted(data):
        decodes.append(data)
        return deserialize(data)

    monkeypatch.setattr(pubsub_layer._serializer, "deserialize", counted)
    await pubsub_layer.group_send("room", {"type": "note", "n": 1})
    for channel in members:
        assert await asyncio.wait_for(pubsub_layer.receive(channel), WAIT) == {"type": "note", "n": 1}
    assert len(decodes) == 1


async def test_a_member_that_changes_its_message_changes_no_other_members(pubsub_layer):
    first, second = await members_make(pubsub_layer, group="room", count=2)
    await pubsub_layer.group_send("room", {"type": "note", "n": 1})
    mine = await asyncio.wait_for(pubsub_layer.receive(first), WAIT)
    mine["n"], mine["added"] = 2, True
    del mine["type"]
    assert await asyncio.wait_for(pubsub_layer.receive(second), WAIT) == {"type": "note", "n": 1}


async def test_a_message_that_cannot_be_decoded_is_logged_once_and_dropped(pubsub_layer, redis_server, caplog):
    """The receive task, which serves every socket of the process, goes on: the next message arrives."""
    members = await members_make(pubsub_layer, group="room", count=3)
    publisher = redis.asyncio.Redis.from_url(redis_server)
    await publisher.publish(pubsub_layer._get_layer()._get_group_channel_name("room"), b"\xc1 is no msgpack")
    await publisher.aclose()
    await pubsub_layer.group_send("room", {"type": "note", "n": 1})
    for channel in members:
        assert await asyncio.wait_for(pubsub_layer.receive(channel), WAIT) == {"type": "note", "n": 1}
    dropped = [record for record in caplog.records if "cannot be decoded" in record.getMessage()]
    assert [record.levelname for record in dropped] == ["ERROR"]


async def test_every_consumer_is_told_of_a_reconnect_with_a_message_as_decoded(pubsub_layer):
    first, second = await members_make(pubsub_layer, group="room", count=2)
    (shard,) = pubsub_layer._get_layer()._shards
    assert shard.consumers_tell() == 2
    for channel in (first, second):
        assert await asyncio.wait_for(pubsub_layer.receive(channel), WAIT) == {"type": LAYER_RECONNECTED}


async def test_a_channel_s_messages_wait_in_a_light_queue_which_holds_nothing_once_read(pubsub_layer):
    channel = await pubsub_layer.new_channel()
    queue = pubsub_layer._get_layer().channels[channel]
    assert type(queue) is LightQueue
    await pubsub_layer.send(channel, {"type": "note", "n": 1})
    assert await asyncio.wait_for(pubsub_layer.receive(channel), WAIT) == {"type": "note", "n": 1}
    assert queue.items is None and queue.waiter is None


async def receive_waiting(layer: RedisPubSubLayer, channel: str) -> None:
    """Once a receive of ``channel`` waits for a message in its queue (subscribed by then)."""
    async with asyncio.timeout(WAIT):
        while (queue := layer._get_layer().channels.get(channel)) is None or queue.waiter is None:
            await asyncio.sleep(0)  # one turn of the loop, until the condition holds


async def test_a_receive_cancelled_again_while_it_unsubscribes_still_unsubscribes_and_logs_no_error(
    pubsub_layer, monkeypatch, caplog
):
    """A cancelled receive unsubscribes its channel, which waits for its Redis's lock behind
    publishes: cancelled again there (messages_dispatch cancels again a source slow to end),
    channels-redis's own clean-up logged an error and left the channel subscribed for good."""
    channel = await pubsub_layer.new_channel()
    (shard,) = pubsub_layer._get_layer()._shards
    unsubscribing, unsubscribe = asyncio.Event(), shard.unsubscribe

    async def unsubscribe_noted(name):
        unsubscribing.set()
        await unsubscribe(name)

    monkeypatch.setattr(shard, "unsubscribe", unsubscribe_noted)
    await shard._lock.acquire()  # a publish under way
    receiving = asyncio.ensure_future(pubsub_layer.receive(channel))
    await receive_waiting(pubsub_layer, channel)
    try:
        receiving.cancel()
        await asyncio.wait_for(unsubscribing.wait(), WAIT)
        receiving.cancel()
        await asyncio.wait([receiving], timeout=WAIT)
    finally:
        shard._lock.release()
    assert receiving.cancelled()
    async with asyncio.timeout(WAIT), shard._lock:  # taken after the unsubscribe, which waited for it first
        assert channel not in shard._subscribed_to and channel not in pubsub_layer._get_layer().channels
    assert [record.getMessage() for record in caplog.records if record.levelname == "ERROR"] == []


async def test_a_channel_released_twice_is_released_once(pubsub_layer, monkeypatch):
    """Both the receive's cancellation and the consumer's end release it (MessagesLoop)."""
    channel = await pubsub_layer.new_channel()
    (shard,) = pubsub_layer._get_layer()._shards
    unsubscribed = []
    unsubscribe = shard.unsubscribe

    async def unsubscribe_noted(name):
        unsubscribed.append(name)
        await unsubscribe(name)

    monkeypatch.setattr(shard, "unsubscribe", unsubscribe_noted)
    await pubsub_layer.channel_release(channel)
    await pubsub_layer.channel_release(channel)
    assert unsubscribed == [channel] and channel not in shard._subscribed_to


async def test_a_channel_received_again_while_its_release_unsubscribes_is_subscribed_after_it(pubsub_layer):
    """A receive of a name whose release is still under way: its SUBSCRIBE went first (the
    channel still counted as subscribed, so it did nothing), the release's UNSUBSCRIBE after, and
    the channel got no message again."""
    channel = await pubsub_layer.new_channel()
    (shard,) = pubsub_layer._get_layer()._shards
    # Started in this order, the release's unsubscribe task runs after the receive's first step.
    releasing = asyncio.ensure_future(pubsub_layer.channel_release(channel))
    receiving = asyncio.ensure_future(pubsub_layer.receive(channel))
    await asyncio.wait_for(releasing, WAIT)
    await receive_waiting(pubsub_layer, channel)
    assert channel in shard._subscribed_to
    await pubsub_layer.send(channel, {"type": "note", "n": 1})
    assert await asyncio.wait_for(receiving, WAIT) == {"type": "note", "n": 1}


async def test_a_pushed_channel_is_subscribed_and_given_its_messages_as_they_come_each_a_copy(pubsub_layer):
    """channel_push, the consumers' loop's way to read (messages_dispatch's pushed sources): what
    came before it first, then each message as ResilientShard hands it over, a copy per member."""
    first, second = await members_make(pubsub_layer, group="room", count=2)
    await pubsub_layer.group_send("room", {"type": "note", "n": 1})
    assert await asyncio.wait_for(pubsub_layer.receive(second), WAIT) == {"type": "note", "n": 1}
    got = asyncio.Queue()
    await pubsub_layer.channel_push(first, got.put_nowait)
    (shard,) = pubsub_layer._get_layer()._shards
    assert pubsub_layer._get_layer()._get_group_channel_name("room") in shard._subscribed_to
    await pubsub_layer.group_send("room", {"type": "note", "n": 2})
    pushed = [await asyncio.wait_for(got.get(), WAIT) for _ in range(2)]
    assert pushed == [{"type": "note", "n": 1}, {"type": "note", "n": 2}]
    pushed[1]["n"] = 3  # a consumer changing its message changes no other member's
    assert await asyncio.wait_for(pubsub_layer.receive(second), WAIT) == {"type": "note", "n": 2}
    # A channel that new_channel() did not make (and subscribe) is subscribed by channel_push itself.
    fresh = "decode-test:specific.pushed"
    await pubsub_layer.channel_push(fresh, got.put_nowait)
    assert fresh in shard._subscribed_to


async def test_a_consumers_reader_that_raises_is_logged_and_the_groups_other_members_still_get_the_message(
    pubsub_layer, caplog
):
    """The receive task hands each message to every member of the process (queue_put): one reader's
    failure must not cost the others their message, nor stop the task."""
    broken, working = await members_make(pubsub_layer, group="room", count=2)

    def raising(message):
        raise RuntimeError("a reader's bug")

    await pubsub_layer.channel_push(broken, raising)
    await pubsub_layer.group_send("room", {"type": "note", "n": 1})
    await pubsub_layer.group_send("room", {"type": "note", "n": 2})
    for n in (1, 2):
        assert await asyncio.wait_for(pubsub_layer.receive(working), WAIT) == {"type": "note", "n": n}
    failed = [record for record in caplog.records if "reader failed" in record.getMessage()]
    assert [record.levelname for record in failed] == ["ERROR", "ERROR"]
