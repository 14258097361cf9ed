"""Counts per time window in the cache (realtime_common.throttle), in Django's default cache."""

import uuid

from realtime_common.throttle import window_allow, window_return

WINDOW = 10**6  # one window for the whole test


def test_an_action_returned_is_no_longer_counted_in_its_window():
    key = f"test:{uuid.uuid4().hex}"  # no count from another test
    window_return(key=key, seconds=WINDOW)  # nothing counted in this window yet: nothing to return
    assert [window_allow(key=key, limit=2, seconds=WINDOW) for _ in range(2)] == [True, True]
    window_return(key=key, seconds=WINDOW)
    assert [window_allow(key=key, limit=2, seconds=WINDOW) for _ in range(2)] == [True, False]
