"""The presence store through Sentinel: with REDIS_SENTINELS, store_new() keeps the
rooms' entries on the primary the sentinel names, as the cache and the channel layers do."""

from realtime_common.redis_servers import redis_sentinel_from_env
from rooms import presence
from rooms.presence_store import Change, Members, RedisStore, room_keys


async def test_the_store_keeps_its_entries_on_the_primary_the_sentinel_names(redis_sentinel, settings):
    settings.REDIS_URLS = []
    settings.REDIS_SENTINEL = redis_sentinel_from_env(environ=redis_sentinel.env, urls=[])
    store = presence.store_new()
    assert isinstance(store, RedisStore)
    try:
        [applied] = await store.apply(changes=[Change(room_id=1, adds=("p1 alice",), members=10)], ttl=10)
        assert (applied.joined, applied.members) == (["alice"], Members(["alice"], 1, False))
    finally:
        await store.close()
    primary = redis_sentinel.client(redis_sentinel.primary.port)
    assert primary.hkeys(room_keys(room_id=1)[1]) == ["alice"]
