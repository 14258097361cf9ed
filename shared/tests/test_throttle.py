"""Counts per time window in the cache (realtime_common.throttle), in Django's default cache."""

import uuid

from django.core.cache import cache

from realtime_common import throttle
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
