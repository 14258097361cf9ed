"""The presence stores, in memory and in Redis, with time the tests move: entries
live TTL seconds unless refreshed. Both must answer alike."""

import pytest
import redis

from rooms.presence_store import Change, Members, MemoryStore, RedisStore, room_keys

LOBBY, RANDOM = 1, 2


class Clock:
    """The memory store's clock, moved by the test."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        yield MemoryStore(clock=Clock())
        return
    url = request.getfixturevalue("redis_server")
    redis.Redis.from_url(url).flushall()
    store = RedisStore(host={"address": url})
    yield store
    await store.close()


@pytest.fixture
def later(store, request):
    """``later(seconds)``: that much time passes for the store."""

    def memory_later(seconds: float) -> None:
        store.clock.now += seconds

    def redis_later(seconds: float) -> None:
        # Redis's clock is its server's, which no test moves: its entries' expiry times move back instead.
        client = redis.Redis.from_url(request.getfixturevalue("redis_server"))
        for key in client.scan_iter("rooms:presence:*:entries"):
            client.zadd(key, {entry: expiry - seconds for entry, expiry in client.zrange(key, 0, -1, withscores=True)})

    return memory_later if isinstance(store, MemoryStore) else redis_later


async def apply(store, *, ttl: float = 10, room_id: int = LOBBY, **change):
    [applied] = await store.apply(changes=[Change(room_id=room_id, **change)], ttl=ttl)
    return applied


def diff(applied) -> tuple[list[str], list[str]]:
    return applied.joined, applied.left


async def names(store, *, room_id: int = LOBBY) -> list[str]:
    """Everyone in the room (in one page of 100: the tests' rooms are small)."""
    members, _ = await store.snapshot(room_id=room_id, limit=100)
    return members.names


async def test_first_entry_of_a_user_joins_and_their_last_leaves(store):
    first = await apply(store, adds=("p1 alice",))
    assert diff(first) == (["alice"], []) and first.version.number == 1
    assert await store.snapshot(room_id=LOBBY, limit=5) == (Members(["alice"], 1, False), first.version)

    # alice in a second process, and bob: only bob is news.
    second = await apply(store, adds=("p2 alice", "p1 bob"))
    assert diff(second) == (["bob"], []) and second.version == first.version._replace(number=2)
    assert diff(await apply(store, removes=("p1 alice",))) == ([], [])
    last = await apply(store, removes=("p2 alice",))
    assert diff(last) == ([], ["alice"]) and last.version.number == 3
    assert await store.snapshot(room_id=LOBBY, limit=5) == (Members(["bob"], 1, False), last.version)


async def test_the_version_rises_only_when_the_users_change(store):
    joined = await apply(store, adds=("p1 alice",))
    for refreshed in [
        await apply(store, adds=("p1 alice",)),  # a heartbeat
        await apply(store, removes=("p9 nobody",)),  # an entry that is not there
        await apply(store),  # nothing at all
    ]:
        assert diff(refreshed) == ([], []) and refreshed.version == joined.version


async def test_entries_of_a_process_that_stopped_refreshing_them_expire(store, later):
    await apply(store, adds=("dead alice", "dead bob"))
    later(5)
    await apply(store, adds=("live bob",))
    # The live process refreshes its entry; the dead one's expire 10 s after they were added.
    later(4.5)
    assert diff(await apply(store, adds=("live bob",))) == ([], [])
    later(0.5)
    expired = await apply(store, adds=("live bob",))
    assert diff(expired) == ([], ["alice"])
    assert await names(store) == ["bob"]


async def test_one_call_reports_the_net_change(store, later):
    await apply(store, adds=("dead alice",))
    later(1)
    before = await apply(store, adds=("p1 carol",))
    # alice's expired entry goes as her entry of another process comes: she never left.
    later(9)
    same = await apply(store, adds=("p2 alice",))
    assert diff(same) == ([], []) and same.version == before.version
    # carol leaves and bob comes, in one call: one change, one version.
    both = await apply(store, adds=("p1 bob",), removes=("p1 carol",))
    assert diff(both) == (["bob"], ["carol"]) and both.version.number == before.version.number + 1


async def test_members_are_answered_only_when_asked_and_rooms_are_apart(store):
    lobby, random = await store.apply(
        changes=[
            Change(room_id=LOBBY, adds=("p1 carol", "p1 alice", "p2 alice"), members=10),
            Change(room_id=RANDOM, adds=("p1 bob",)),
        ],
        ttl=10,
    )
    assert lobby.members == Members(["alice", "carol"], 2, False) and random.members is None
    assert (diff(random), random.count) == ((["bob"], []), 1)
    assert await names(store, room_id=RANDOM) == ["bob"]


async def test_members_come_a_page_at_a_time_with_the_count_each_name_once_in_order(store, later):
    everyone = [f"user-{number:02}" for number in range(23)] + ["Émile", "zoë", "Zed", "ß"]
    added = await apply(store, adds=tuple(f"p1 {name}" for name in everyone), members=5)
    # The first page of the change's answer, as of a snapshot: the first 5 in sort order, and how many.
    first = Members(sorted(everyone)[:5], len(everyone), True)
    assert (added.members, added.count) == (first, len(everyone))
    assert (await store.snapshot(room_id=LOBBY, limit=5))[0] == first
    walked, after = [], ""
    while True:
        page, _ = await store.snapshot(room_id=LOBBY, after=after, limit=5)
        assert len(page.names) <= 5 and page.count == len(everyone)
        walked += page.names
        if not page.more:
            break
        after = page.names[-1]
    # Byte order in Redis is code point order in Python (UTF-8): each once, in Python's sort order.
    assert walked == sorted(everyone)
    # After a name that is not (or no longer) in the room: from the next one.
    page, _ = await store.snapshot(room_id=LOBBY, after="user-195", limit=3)
    assert page == Members(["user-20", "user-21", "user-22"], len(everyone), True)
    # Those who left, or expired, are gone from the pages and the count alike.
    later(10)
    gone = await apply(store, adds=("p2 user-00",), members=3)
    assert gone.members == Members(["user-00"], 1, False) and gone.count == 1
    assert (await store.snapshot(room_id=LOBBY, after="user-00", limit=3))[0] == Members([], 1, False)


async def test_a_room_whose_keys_were_lost_starts_a_new_epoch(store, request):
    before = await apply(store, adds=("p1 alice",))
    if isinstance(store, RedisStore):
        redis.Redis.from_url(request.getfixturevalue("redis_server")).flushall()
    else:
        store.rooms.clear()
    after = await apply(store, adds=("p1 alice",))
    # The same number in another epoch: a consumer at 1 must not take this for "nothing new".
    assert diff(after) == (["alice"], []) and after.version.number == 1
    assert after.version.epoch != before.version.epoch


async def test_redis_keys_of_a_room_nobody_refreshes_expire_and_a_forgotten_script_is_reloaded(redis_server):
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    store = RedisStore(host={"address": redis_server})
    try:
        await apply(store, adds=("p1 alice",), ttl=2.5)
        assert [client.ttl(key) for key in room_keys(room_id=LOBBY)] == [3, 3, 3, 3]
        client.script_flush()  # what a Redis restart does
        assert diff(await apply(store, adds=("p1 bob",), ttl=2.5)) == (["bob"], [])
    finally:
        await store.close()


async def test_names_left_behind_by_a_process_of_an_older_version_are_rebuilt_by_the_next_apply(redis_server):
    """In a rolling deploy, a process from before the names key changes the users alone: the next apply of
    this version finds the two disagree (their counts, O(1)) and rebuilds the names from the users."""
    client = redis.Redis.from_url(redis_server, decode_responses=True)
    client.flushall()
    store = RedisStore(host={"address": redis_server})
    try:
        await apply(store, adds=("p1 alice", "p1 bob"))
        _, users, _, names_key = room_keys(room_id=LOBBY)
        client.hset(users, "carol", 1)  # the older process's carol, with no name
        client.hdel(users, "alice")  # and alice gone, her name left behind
        client.zadd(names_key, {"dave": 0})  # and a name of nobody
        rebuilt = await apply(store, adds=("p1 bob",), members=10)
        assert (rebuilt.members, rebuilt.count) == (Members(["bob", "carol"], 2, False), 2)
        assert client.zrange(names_key, 0, -1) == ["bob", "carol"]
    finally:
        await store.close()


async def test_an_older_process_s_user_in_and_user_out_are_caught_up_though_the_counts_agree(redis_server):
    """One user in and another out, from a process of before the names key: the counts stay equal, the
    sets differ; the version's number, which that process raises, tells the next apply to rebuild."""
    client = redis.Redis.from_url(redis_server, decode_responses=True)
    client.flushall()
    store = RedisStore(host={"address": redis_server})
    try:
        await apply(store, adds=("p1 alice", "p1 bob"))
        entries, users, version, names_key = room_keys(room_id=LOBBY)
        # What the older process's apply writes: carol's entry in, alice's out, and the version raised.
        client.zadd(entries, {"p0 carol": client.zscore(entries, "p1 alice")})
        client.zrem(entries, "p1 alice")
        client.hset(users, "carol", 1)
        client.hdel(users, "alice")
        client.hincrby(version, "number", 1)
        rebuilt = await apply(store, adds=("p1 bob",), members=10)
        assert (rebuilt.members, rebuilt.count) == (Members(["bob", "carol"], 2, False), 2)
        assert await names(store) == ["bob", "carol"]
    finally:
        await store.close()
