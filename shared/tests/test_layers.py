"""The core layer's refresh of this process's group memberships (RedisCoreLayer), against a real Redis:
a group_discard that runs while a refresh is under way is not undone by it."""

import asyncio
import contextlib

import pytest
import redis
from redis.asyncio.client import Pipeline

from realtime_common.layers import RedisCoreLayer

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


class HeldPipeline:
    """Holds the first pipeline sent (the refresh's) at its await point until ``release()``."""

    def __init__(self, monkeypatch):
        self.holding, self.released = asyncio.Event(), asyncio.Event()
        execute = Pipeline.execute

        async def held_execute(pipeline, *args, **kwargs):
            if not self.holding.is_set():
                self.holding.set()
                await self.released.wait()
            return await execute(pipeline, *args, **kwargs)

        monkeypatch.setattr(Pipeline, "execute", held_execute)

    async def wait(self) -> None:
        await asyncio.wait_for(self.holding.wait(), timeout=WAIT)

    def release(self) -> None:
        self.released.set()


async def group_members(layer: RedisCoreLayer, group: str) -> list[str]:
    return [member.decode() for member in await layer.connection(0).zrange(layer._group_key(group), 0, -1)]


async def test_a_channel_discarded_while_the_refresh_re_adds_it_stays_discarded(core_layer, monkeypatch):
    stay, leave = await core_layer.new_channel(), await core_layer.new_channel()
    for channel in (stay, leave):
        await core_layer.group_add("room", channel)
    held = HeldPipeline(monkeypatch)
    refresh = asyncio.ensure_future(core_layer.memberships_add_again())
    await held.wait()
    await core_layer.group_discard("room", leave)  # its ZREM reaches Redis first, the refresh's ZADD after
    held.release()
    await asyncio.wait_for(refresh, timeout=WAIT)
    assert await group_members(core_layer, "room") == [stay]


async def test_a_group_discarded_while_an_earlier_pipeline_ran_is_not_re_added(core_layer, monkeypatch):
    channel = await core_layer.new_channel()
    for group in ("first", "second"):
        await core_layer.group_add(group, channel)
    held = HeldPipeline(monkeypatch)
    # One group per pipeline: the second group's is made once the first one's has run.
    refresh = asyncio.ensure_future(core_layer.memberships_add_again(batch=1))
    await held.wait()
    await core_layer.group_discard("second", channel)
    held.release()
    await asyncio.wait_for(refresh, timeout=WAIT)
    assert (await group_members(core_layer, "first"), await group_members(core_layer, "second")) == ([channel], [])
