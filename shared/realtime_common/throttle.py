"""Limits on how often something may happen: a token bucket in one process's
memory (per socket), and a counter per time window in the cache (per user or
address, across every process of the site)."""

import contextlib
import time
from collections.abc import Callable

from django.core.cache import cache


class TokenBucket:
    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> bool:
        """Spend one token if there is one; False means: over the limit, refuse."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def window_allow(*, key: str, limit: int, seconds: int) -> bool:
    """Count one action under ``key``; False once there were more than ``limit`` in
    the current window of ``seconds``.

    The count lives in the cache, which is Redis when REDIS_URL is set, so it
    covers every tab and every process. The key outlives its window, so that
    incr() never finds it expired just after add().

    incr() first: every action of a window but its first finds the count there, and
    costs one call of the cache rather than two (add() then incr()).
    """
    window = window_key(key=key, seconds=seconds)
    try:
        return cache.incr(window) <= limit
    except ValueError:  # the window's first action: no count yet
        if cache.add(window, 1, timeout=seconds * 2):
            return 1 <= limit
        return cache.incr(window) <= limit  # another process's first action came in between


def window_return(*, key: str, seconds: int) -> None:
    """Uncount one action that ``window_allow`` counted but that turned out not to
    happen. Should a new window have begun in between, its count goes down instead,
    if it has one: at worst it allows one action more."""
    with contextlib.suppress(ValueError):  # this window counted nothing yet: nothing to take back
        cache.decr(window_key(key=key, seconds=seconds))


def window_key(*, key: str, seconds: int) -> str:
    """The cache key counting ``key``'s actions in the current window of ``seconds``."""
    return f"rate:{key}:{int(time.time() // seconds)}"
