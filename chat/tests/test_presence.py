"""The presence stores, in memory and in Redis, with a clock the tests move: entries
live TTL seconds unless refreshed. Both must answer alike."""

import pytest
import redis

from rooms.presence import Change, MemoryStore, RedisStore, room_keys

LOBBY, RANDOM = 1, 2


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    url = request.getfixturevalue("redis_server")
    redis.Redis.from_url(url).flushall()
    store = RedisStore(url)
    yield store
    await store.close()


async def apply(store, *, now: float = 100, ttl: float = 10, room_id: int = LOBBY, **change):
    [applied] = await store.apply(changes=[Change(room_id=room_id, **change)], now=now, ttl=ttl)
    return applied


def diff(applied) -> tuple[list[str], list[str]]:
    return applied.joined, applied.left


async def test_first_entry_of_a_user_joins_and_their_last_leaves(store):
    first = await apply(store, adds=("p1 alice",))
    assert diff(first) == (["alice"], []) and first.version.number == 1
    assert await store.snapshot(room_id=LOBBY) == (["alice"], first.version)

    # alice in a second process, and bob: only bob is news.
    second = await apply(store, adds=("p2 alice", "p1 bob"), now=101)
    assert diff(second) == (["bob"], []) and second.version == first.version._replace(number=2)
    assert diff(await apply(store, removes=("p1 alice",), now=102)) == ([], [])
    last = await apply(store, removes=("p2 alice",), now=103)
    assert diff(last) == ([], ["alice"]) and last.version.number == 3
    assert await store.snapshot(room_id=LOBBY) == (["bob"], last.version)


async def test_the_version_rises_only_when_the_users_change(store):
    joined = await apply(store, adds=("p1 alice",))
    for refreshed in [
        await apply(store, adds=("p1 alice",), now=105),  # a heartbeat
        await apply(store, removes=("p9 nobody",), now=106),  # an entry that is not there
        await apply(store, now=107),  # nothing at all
    ]:
        assert diff(refreshed) == ([], []) and refreshed.version == joined.version


async def test_entries_of_a_process_that_stopped_refreshing_them_expire(store):
    await apply(store, adds=("dead alice", "dead bob"), now=100)
    await apply(store, adds=("live bob",), now=105)
    # The live process refreshes its entry; the dead one's expire at 110.
    assert diff(await apply(store, adds=("live bob",), now=109.9)) == ([], [])
    expired = await apply(store, adds=("live bob",), now=110)
    assert diff(expired) == ([], ["alice"])
    assert (await store.snapshot(room_id=LOBBY))[0] == ["bob"]


async def test_one_call_reports_the_net_change(store):
    await apply(store, adds=("dead alice",), now=100)
    before = await apply(store, adds=("p1 carol",), now=101)
    # alice's expired entry goes as her entry of another process comes: she never left.
    same = await apply(store, adds=("p2 alice",), now=110)
    assert diff(same) == ([], []) and same.version == before.version
    # carol leaves and bob comes, in one call: one change, one version.
    both = await apply(store, adds=("p1 bob",), removes=("p1 carol",), now=111)
    assert diff(both) == (["bob"], ["carol"]) and both.version.number == before.version.number + 1


async def test_members_are_answered_only_when_asked_and_rooms_are_apart(store):
    lobby, random = await store.apply(
        changes=[
            Change(room_id=LOBBY, adds=("p1 carol", "p1 alice", "p2 alice"), members=True),
            Change(room_id=RANDOM, adds=("p1 bob",)),
        ],
        now=100,
        ttl=10,
    )
    assert lobby.members == ["alice", "carol"] and random.members is None
    assert diff(random) == (["bob"], [])
    assert (await store.snapshot(room_id=RANDOM))[0] == ["bob"]


async def test_a_room_whose_keys_were_lost_starts_a_new_epoch(store, request):
    before = await apply(store, adds=("p1 alice",))
    if isinstance(store, RedisStore):
        redis.Redis.from_url(request.getfixturevalue("redis_server")).flushall()
    else:
        store.rooms.clear()
    after = await apply(store, adds=("p1 alice",), now=101)
    # The same number in another epoch: a consumer at 1 must not take this for "nothing new".
    assert diff(after) == (["alice"], []) and after.version.number == 1
    assert after.version.epoch != before.version.epoch


async def test_redis_keys_of_a_room_nobody_refreshes_expire_and_a_forgotten_script_is_reloaded(redis_server):
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    store = RedisStore(redis_server)
    try:
        await apply(store, adds=("p1 alice",), ttl=2.5)
        assert [client.ttl(key) for key in room_keys(room_id=LOBBY)] == [3, 3, 3]
        client.script_flush()  # what a Redis restart does
        assert diff(await apply(store, adds=("p1 bob",), ttl=2.5)) == (["bob"], [])
    finally:
        await store.close()
