"""What a process keeps once per event loop, and the tasks it runs while it has something to look after."""

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Sized
from typing import TypeVar

logger = logging.getLogger(__name__)

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


class Rounds:
    """A task that runs ``round()`` every ``period()`` seconds while ``members`` (a set or
    dict of the subclass's) is not empty: one task per process, not a timer per member.
    Keep it per event loop (``loop_local``), as its task and future belong to one.

    - **Started** by ``rounds_start()``, which the subclass calls after adding a member;
      it starts the task unless it runs.
    - **Woken** by ``rounds_wake()``: the wait is cut short, and a round runs now, or, once
      no member is left, the task ends now rather than a period later. Called during a
      round, the next round follows it without a wait. ``round_await()`` also waits for
      the end of that round. With no task running there is nothing to wake: the next
      task's first round waits its period.
    - **Ended** when it finds ``members`` empty; ``task`` is None from that moment on,
      synchronously, so that a member added from then on starts a task of its own.
      Then ``ended()``, if given, lets go of what the rounds used (a connection).
    - **Never ended by a round that raises**: what a round does not handle itself is
      logged, and the next round comes in its time, as the retry. It retries only what
      is still in ``members``: a round that took a member out must put it back before
      it raises.
    - **Cancelled with its event loop** (``asyncio.run`` cancels the tasks left), and
      ``ended()`` still runs. A future per wait, not an Event: nothing outlives the
      task and keeps its (a test's) event loop alive.
    """

    def __init__(
        self,
        *,
        name: str,
        members: Sized,
        period: Callable[[], float],
        round: Callable[[], Awaitable[None]],
        ended: Callable[[], Awaitable[None]] | None = None,
    ):
        self.rounds_name, self.rounds_members, self.rounds_period = name, members, period
        self.rounds_round, self.rounds_ended = round, ended
        self.task: asyncio.Task | None = None
        self.wake: asyncio.Future | None = None  # the task's wait for the next round, while it waits
        self.soon = False  # the next round follows without a wait
        self.next_round: asyncio.Future | None = None  # the end of the next round, awaited by round_await()

    def rounds_start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self.rounds_run())

    def rounds_wake(self) -> None:
        if self.task is None:
            # Left set, ``soon`` would hurry the next task's first round (a member's
            # first round would run at once, not in its time).
            return
        self.soon = True
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    async def round_await(self) -> None:
        """Wake the task (started if need be) and wait for the end of the round that follows,
        or for the task's end when no member is left for one. A round that raises ends
        it too: the caller goes on, and the next round is the retry. Shielded: a caller
        that goes away (its socket closed) does not cancel the others' wait."""
        if self.next_round is None:
            self.next_round = asyncio.get_running_loop().create_future()
        next_round = self.next_round
        self.rounds_start()
        self.rounds_wake()
        await asyncio.shield(next_round)

    async def rounds_run(self) -> None:
        try:
            while self.rounds_members:
                if not self.soon:
                    self.wake = asyncio.get_running_loop().create_future()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake, self.rounds_period())
                    self.wake = None
                self.soon = False
                if self.rounds_members:
                    awaited, self.next_round = self.next_round, None
                    try:
                        await self.rounds_round()
                    except Exception:
                        logger.exception("%s: a round failed; the next one comes in its time", self.rounds_name)
                    finally:
                        if awaited is not None:
                            awaited.set_result(None)
        finally:
            awaited, self.next_round = self.next_round, None
            if awaited is not None:
                awaited.set_result(None)  # no member left for a round
            self.task, self.wake, self.soon = None, None, False
            if self.rounds_ended is not None:
                await self.rounds_ended()
