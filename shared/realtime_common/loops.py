"""What a process keeps once per event loop."""

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def loop_local(make: Callable[[], T]) -> Callable[[], T]:
    """A function that returns the running event loop's own ``make()``, made on first use.

    Per loop, not per process: what it makes holds tasks and futures, which belong to
    the loop that made them. A server runs one loop; each test runs one of its own,
    and inherits no task from another's (the object goes with its loop)."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def loop_own() -> T:
        loop = asyncio.get_running_loop()
        if loop not in made:
            made[loop] = make()
        return made[loop]

    return loop_own
