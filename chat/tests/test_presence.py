"""The presence stores, with a clock the tests move: entries live TTL seconds unless refreshed."""

import pytest
import redis

from rooms.presence import MemoryPresence, RedisPresence, members


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryPresence()
    url = request.getfixturevalue("redis_server")
    redis.Redis.from_url(url).flushall()
    return RedisPresence(url)


def test_entries_expire_unless_refreshed(store):
    store.touch("room", "tab-1 alice", now=100, ttl=10)
    assert sorted(store.touch("room", "tab-2 bob", now=105, ttl=10)) == ["tab-1 alice", "tab-2 bob"]
    # alice's process died after 100: her entry is not refreshed any more; bob's is.
    assert sorted(store.touch("room", "tab-2 bob", now=109.9, ttl=10)) == ["tab-1 alice", "tab-2 bob"]
    assert store.touch("room", "tab-2 bob", now=110, ttl=10) == ["tab-2 bob"]


def test_removed_entries_are_gone_and_rooms_are_apart(store):
    store.touch("room", "tab-1 alice", now=100, ttl=10)
    store.touch("other", "tab-2 bob", now=100, ttl=10)
    store.remove("room", "tab-1 alice")
    assert store.touch("room", "tab-3 carol", now=101, ttl=10) == ["tab-3 carol"]
    assert sorted(store.touch("other", "tab-4 dave", now=101, ttl=10)) == ["tab-2 bob", "tab-4 dave"]


def test_members_lists_each_user_once_in_order():
    assert members(["tab-3 carol", "tab-1 alice", "tab-2 alice"]) == ["alice", "carol"]
