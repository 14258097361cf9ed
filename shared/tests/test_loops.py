import asyncio
import gc
import weakref

import pytest

from realtime_common.loops import LightQueue, Rounds, loop_local


class Thing:
    pass


def test_each_event_loop_has_its_own_and_keeps_it_while_it_runs():
    thing_get = loop_local(Thing)

    async def twice() -> tuple[Thing, Thing]:
        return thing_get(), thing_get()

    first, again = asyncio.run(twice())
    other, _ = asyncio.run(twice())
    assert first is again
    assert other is not first


def test_what_a_loop_made_goes_with_the_loop():
    thing_get = loop_local(Thing)

    async def made() -> weakref.ref:
        return weakref.ref(thing_get())

    loop = asyncio.new_event_loop()
    thing = loop.run_until_complete(made())
    assert thing() is not None  # kept while its loop is
    loop.close()
    del loop
    gc.collect()
    assert thing() is None


# A period no test waits out: a round that comes is woken, or the test says why it came.
NEVER = 3600.0


class Watch(Rounds):
    """Rounds over a set of names, that reports each round and its end on queues. A test
    holds a round (``gate``), or ``ended()`` (``release``), by clearing that event."""

    def __init__(self, *, period: float = NEVER, failures: int = 0):
        self.names: set[str] = set()
        self.failures = failures  # how many rounds raise before they work
        self.rounds: asyncio.Queue[frozenset[str]] = asyncio.Queue()
        self.ends: asyncio.Queue[None] = asyncio.Queue()
        self.waiting = asyncio.Event()  # set when the task begins a wait of its period
        self.gate, self.release = asyncio.Event(), asyncio.Event()
        self.gate.set()
        self.release.set()
        super().__init__(name="watch", members=self.names, period=self.period_wait, round=self.round, ended=self.end)
        self.period = period

    def period_wait(self) -> float:
        self.waiting.set()
        return self.period

    def add(self, name: str) -> None:
        self.names.add(name)
        self.rounds_start()

    def discard(self, name: str) -> None:
        self.names.discard(name)
        if not self.names:
            self.rounds_wake()

    async def round(self) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("a bug in a round")
        await self.rounds.put(frozenset(self.names))
        await self.gate.wait()

    async def end(self) -> None:
        await self.ends.put(None)
        await self.release.wait()


async def test_no_task_runs_before_the_first_member():
    watch = Watch()
    assert watch.task is None
    watch.add("alice")
    assert watch.task is not None and not watch.task.done()


async def test_a_round_comes_every_period_while_there_are_members():
    watch = Watch(period=0)
    watch.add("alice")
    assert await watch.rounds.get() == {"alice"}
    watch.add("bob")
    while await watch.rounds.get() != {"alice", "bob"}:
        pass
    assert watch.task is not None


async def test_a_wake_brings_the_round_now_not_a_period_later():
    watch = Watch()
    watch.add("alice")
    watch.rounds_wake()
    async with asyncio.timeout(5):
        assert await watch.rounds.get() == {"alice"}


async def test_the_task_ends_as_soon_as_the_last_member_goes_and_the_next_member_starts_another():
    watch = Watch()
    watch.add("alice")
    task = watch.task
    watch.discard("alice")
    async with asyncio.timeout(5):  # not the period: the wake ended it
        await task
        await watch.ends.get()
    assert watch.task is None
    assert watch.rounds.empty()  # no round for an empty set
    watch.add("bob")
    assert watch.task is not task and not watch.task.done()
    watch.rounds_wake()
    async with asyncio.timeout(5):
        assert await watch.rounds.get() == {"bob"}


async def test_a_member_added_while_the_last_task_ends_starts_a_task_of_its_own():
    watch = Watch()
    watch.release.clear()  # ended() waits until the test lets it go
    watch.add("alice")
    ending = watch.task
    watch.discard("alice")
    async with asyncio.timeout(5):
        await watch.ends.get()  # the old task is in its ended(), held there
    watch.add("bob")
    assert watch.task is not ending and not ending.done()
    watch.release.set()
    async with asyncio.timeout(5):
        await ending
        # The new task is not the old one's: it goes on, and its rounds come.
        watch.rounds_wake()
        assert await watch.rounds.get() == {"bob"}
    assert not watch.task.done()


async def test_a_wake_with_no_task_running_leaves_the_next_first_round_to_its_time():
    watch = Watch()
    watch.rounds_wake()  # nothing to wake
    watch.add("alice")
    async with asyncio.timeout(5):
        await watch.waiting.wait()  # the task waits its period...
    assert watch.rounds.empty()  # ...with no round before


async def round_brought_held() -> tuple[Watch, asyncio.Task]:
    """A watch of "alice" whose first round, brought by a ``round_await()``, runs and is held at
    the gate: the watch and that ``round_await()``."""
    watch = Watch()
    watch.gate.clear()
    watch.add("alice")
    waiting = asyncio.create_task(watch.round_await())
    async with asyncio.timeout(5):
        assert await watch.rounds.get() == {"alice"}
    return watch, waiting


async def test_round_await_waits_for_the_end_of_the_round_it_brings():
    watch, waiting = await round_brought_held()
    assert not waiting.done()
    watch.gate.set()
    async with asyncio.timeout(5):
        await waiting


async def test_round_await_called_during_a_round_waits_for_the_round_after_it():
    """That round may have read the members before the caller's change: the next one has it."""
    watch, first = await round_brought_held()  # round 1, held at the gate
    watch.names.add("bob")
    second = asyncio.create_task(watch.round_await())
    # asyncio runs callbacks in order: ``second`` starts waiting before round 1 resumes.
    # Round 1 is let through; the gate is closed again for round 2 (which comes without a period's wait).
    watch.gate.set()
    watch.gate.clear()
    async with asyncio.timeout(5):
        await first
        assert await watch.rounds.get() == {"alice", "bob"}
    assert not second.done()
    watch.gate.set()
    async with asyncio.timeout(5):
        await second


async def test_a_round_that_raises_ends_the_wait_of_round_await():
    watch = Watch(failures=1)
    watch.add("alice")
    async with asyncio.timeout(5):
        await watch.round_await()
    # The caller goes on; the task too, for the next round (the retry).
    assert watch.rounds.empty() and not watch.task.done()


async def test_a_round_that_raises_is_logged_and_the_rounds_go_on(caplog):
    watch = Watch(period=0, failures=2)
    watch.add("alice")
    async with asyncio.timeout(5):
        assert await watch.rounds.get() == {"alice"}
    failed = [record for record in caplog.records if record.name == "realtime_common.loops"]
    assert [record.getMessage() for record in failed] == ["watch: a round failed; the next one comes in its time"] * 2
    assert all(record.exc_info[0] is RuntimeError for record in failed)


def test_the_task_is_cancelled_with_its_event_loop_and_lets_go_of_what_it_used():
    watches: list[Watch] = []

    async def main() -> None:
        watch = Watch()
        watch.add("alice")  # never discarded: the loop closes with the task waiting
        watches.append(watch)

    asyncio.run(main())
    [watch] = watches
    assert watch.task is None
    assert watch.ends.qsize() == 1


# -- LightQueue: what daphne's input queue and the pub/sub layer's channel queue are --------------


async def reader_waiting(queue: LightQueue) -> asyncio.Task:
    """A task reading ``queue``, once it waits in its ``get`` (its first step has run)."""
    reader = asyncio.create_task(queue.get())
    while queue.waiter is None:
        await asyncio.sleep(0)  # one turn of the loop: the task's first step
    return reader


async def test_a_light_queue_gives_its_messages_in_the_order_they_were_put_and_holds_nothing_once_read():
    queue = LightQueue()
    for n in range(3):
        queue.put_nowait(n)
    assert [await queue.get() for _ in range(3)] == [0, 1, 2]
    # Empty again: no deque kept for an idle socket.
    assert queue.items is None and queue.waiter is None
    assert queue  # true while empty: daphne tests its queue's truth for its existence


async def test_a_waiting_get_is_woken_by_put_nowait_and_the_next_ones_keep_their_order():
    queue = LightQueue()
    reader = await reader_waiting(queue)
    queue.put_nowait("first")
    queue.put_nowait("second")  # put before the reader resumed: waits behind the first
    async with asyncio.timeout(5):
        assert await reader == "first"
    assert await queue.get() == "second"
    assert queue.items is None and queue.waiter is None


async def test_a_cancelled_get_leaves_nothing_behind_and_the_next_message_is_not_lost():
    queue = LightQueue()
    reader = await reader_waiting(queue)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert queue.items is None and queue.waiter is None
    queue.put_nowait("next")  # not handed to the cancelled reader's wait
    assert await queue.get() == "next"


async def test_a_message_handed_to_a_get_cancelled_before_it_resumed_is_the_next_one_out():
    queue = LightQueue()
    reader = await reader_waiting(queue)
    queue.put_nowait("handed")
    queue.put_nowait("behind")
    reader.cancel()  # the message is the wait's result already; the reader has not resumed
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert [await queue.get(), await queue.get()] == ["handed", "behind"]


async def test_a_light_queue_is_read_by_one_task_at_a_time():
    queue = LightQueue()
    reader = await reader_waiting(queue)
    with pytest.raises(RuntimeError, match="one reader at a time"):
        await queue.get()
    queue.put_nowait("mine")
    async with asyncio.timeout(5):
        assert await reader == "mine"


def test_a_light_queue_read_by_a_function_gives_it_what_was_queued_first_then_each_message_as_it_is_put():
    queue, read = LightQueue(), []
    queue.put_nowait(1)
    queue.put_nowait(2)
    queue.read_by(read.append)
    assert read == [1, 2] and queue.items is None
    queue.put_nowait(3)
    assert read == [1, 2, 3] and queue.items is None


async def test_a_light_queue_read_by_a_function_is_read_by_nothing_else():
    queue = LightQueue()
    queue.read_by(lambda message: None)
    with pytest.raises(RuntimeError, match="one reader at a time"):
        await queue.get()
    with pytest.raises(RuntimeError, match="one reader at a time"):
        queue.read_by(lambda message: None)
    waited = LightQueue()
    waiting = await reader_waiting(waited)
    with pytest.raises(RuntimeError, match="one reader at a time"):
        waited.read_by(lambda message: None)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
