"""Counts per time window in the cache (realtime_common.throttle), in Django's default cache."""

import uuid

import pytest
from django.core.cache import cache
from redis.connection import AbstractConnection

from realtime_common import throttle
from realtime_common.cache import caches
from realtime_common.throttle import window_allow, window_return

WINDOW = 10**6  # one window for the whole test


def test_an_action_returned_is_no_longer_counted_in_its_window():
    key = f"test:{uuid.uuid4().hex}"  # no count from another test
    window_return(key=key, seconds=WINDOW)  # nothing counted in this window yet: nothing to return
    assert [window_allow(key=key, limit=2, seconds=WINDOW) for _ in range(2)] == [True, True]
    window_return(key=key, seconds=WINDOW)
    assert [window_allow(key=key, limit=2, seconds=WINDOW) for _ in range(2)] == [True, False]


class CountedCache:
    """The cache, with the calls made to it."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        self.calls.append(name)
        return getattr(cache, name)


def test_every_action_of_a_window_but_its_first_is_one_call_of_the_cache(monkeypatch):
    key = f"test:{uuid.uuid4().hex}"
    counted = CountedCache()
    monkeypatch.setattr(throttle, "cache", counted)
    assert window_allow(key=key, limit=2, seconds=WINDOW)
    assert counted.calls == ["incr", "add"]  # no count yet: it starts one
    counted.calls.clear()
    assert [window_allow(key=key, limit=2, seconds=WINDOW) for _ in range(2)] == [True, False]
    assert counted.calls == ["incr", "incr"]


def test_the_first_actions_of_a_window_at_once_are_all_counted(monkeypatch):
    key = f"test:{uuid.uuid4().hex}"
    window = throttle.window_key(key=key, seconds=WINDOW)
    add = cache.add

    def add_after_another(*args, **kwargs):
        add(window, 1)  # another process's first action, between this one's incr() and add()
        return add(*args, **kwargs)

    monkeypatch.setattr(cache, "add", add_after_another)
    assert window_allow(key=key, limit=2, seconds=WINDOW)
    monkeypatch.undo()
    assert not window_allow(key=key, limit=2, seconds=WINDOW)  # the third


@pytest.fixture
def redis_cache(redis_server, settings):
    """Django's default cache in a throwaway Redis, as the sites have it with REDIS_URL."""
    settings.CACHES = caches(prefix=f"test-{uuid.uuid4().hex}", redis_urls=[redis_server])


@pytest.mark.usefixtures("redis_cache")
def test_every_action_is_one_round_trip_to_redis(monkeypatch):
    """A chat message waits for its count in the ORM's thread: Django's incr() alone is two
    round trips (EXISTS, INCR), and the window's first action needs a third (add)."""
    key = f"test:{uuid.uuid4().hex}"
    # The connection made (its handshake is round trips too), and the script loaded into Redis (at its first use).
    window_allow(key=f"test:{uuid.uuid4().hex}", limit=2, seconds=WINDOW)
    sent = []
    send = AbstractConnection.send_packed_command

    def counted(connection, *args, **kwargs):  # one call per round trip, a pipeline's too
        sent.append(args)
        return send(connection, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    assert [window_allow(key=key, limit=2, seconds=WINDOW) for _ in range(3)] == [True, True, False]
    assert len(sent) == 3


@pytest.mark.usefixtures("redis_cache")
def test_a_count_in_redis_expires_after_its_window_and_can_be_returned():
    key = f"test:{uuid.uuid4().hex}"
    assert [window_allow(key=key, limit=1, seconds=WINDOW) for _ in range(2)] == [True, False]
    window = throttle.window_key(key=key, seconds=WINDOW)
    stored = cache.make_and_validate_key(window)
    # Never a count without a timeout: it would stay in Redis for good.
    assert WINDOW < cache._cache.get_client(stored).ttl(stored) <= 2 * WINDOW
    window_return(key=key, seconds=WINDOW)
    window_return(key=key, seconds=WINDOW)
    assert window_allow(key=key, limit=1, seconds=WINDOW)


@pytest.mark.usefixtures("redis_cache")
def test_the_cache_makes_its_redis_client_once():
    """Making a redis-py client costs about as much as a round trip (~60 µs): Django makes one per cache call."""
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=True)
