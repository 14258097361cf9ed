"""What a process keeps once per event loop, the tasks it runs while it has something to look after,
the queue each socket reads from, and the loop that dispatches a consumer's messages."""

import asyncio
import contextlib
import functools
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence, Sized
from typing import Generic, TypeVar

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


class LightQueue(Generic[T]):
    """A FIFO queue, unbounded, read by one task: what an idle socket holds per queue is this
    object, with nothing in it. Used for daphne's input queue of a connection (realtime_common.serve)
    and the pub/sub layer's queue of a consumer's channel (realtime_common.layers), where each
    socket had an asyncio.Queue: four deques (its items, its getters, its putters, and the waiters
    of its unfinished-tasks event), 3.3 KB empty, for features these queues never use (a bound,
    ``join``, several readers). Only what their users call is here: ``put_nowait`` (daphne's
    protocols, the pub/sub layer's receive task), ``get`` (the application) and ``read_by`` (the
    pub/sub layer's channel_push, for a consumer's loop).

    - A message put while the reader waits is handed to it, and never stored; the others wait in
      a deque made for them, and dropped once it is empty again.
    - One reader at a time: a second ``get`` while one waits raises (asyncio.Queue would pick one
      of them for each message, so no order would hold between them anyway), and so do a ``get``
      or a second ``read_by`` once a function reads it.
    - A ``get`` cancelled leaves nothing behind, and loses nothing: a message handed to it as the
      cancellation came is put back first in the queue, for the next ``get``.
    """

    __slots__ = ("items", "waiter", "reader")

    def __init__(self) -> None:
        self.items: deque[T] | None = None  # the messages not yet read; None while there are none
        self.waiter: asyncio.Future[T] | None = None  # the reader's wait, while it waits
        self.reader: Callable[[T], None] | None = None  # given each message as it is put (read_by)

    def read_by(self, reader: Callable[[T], None]) -> None:
        """Hand each message to ``reader`` as it is put, from now on (those queued already first),
        rather than keep it for ``get``: a reader with no task waiting (messages_dispatch's pushed sources)."""
        if self.waiter is not None or self.reader is not None:
            raise RuntimeError("a LightQueue is read by one reader at a time")
        items, self.items, self.reader = self.items or (), None, reader
        for item in items:
            reader(item)

    def put_nowait(self, item: T) -> None:
        if self.reader is not None:
            self.reader(item)
            return
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(item)
            return
        if self.items is None:
            self.items = deque()
        self.items.append(item)

    async def get(self) -> T:
        if self.items is not None:
            item = self.items.popleft()
            if not self.items:
                self.items = None
            return item
        if self.waiter is not None or self.reader is not None:
            raise RuntimeError("a LightQueue is read by one reader at a time")
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed a message and cancelled before it resumed: the message is the next one out.
                if self.items is None:
                    self.items = deque()
                self.items.appendleft(waiter.result())
            raise
        finally:
            self.waiter = None


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


async def messages_dispatch(
    *,
    sources: Sequence[Callable[[], Awaitable[T]]],
    dispatch: Callable[[T], Awaitable[None]],
    pushed: Sequence[Callable[[Callable[[T], None]], Awaitable[None]]] = (),
) -> None:
    """Dispatch the messages of ``sources`` (a consumer's ASGI receive and its channel layer's
    receive) and of ``pushed`` one at a time, in the calling task, until a dispatch or a source
    raises; raises that.

    **Pushed sources.** A source in ``pushed`` is no function to read but one to start, given the
    function to call with each message from then on, as the message comes: the pub/sub layer's
    channel (``ResilientLoopLayer.channel_push``), whose messages its receive task takes from Redis
    for every socket of the process. Read by a task of its own, a message cost two task steps and
    two futures; pushed, one of each: 13 % fewer CPU instructions for a chat user's join and close
    told to a room of 200 (callgrind, one daphne: 64.0-64.2 million against 55.6-55.8), and no task
    waits on an idle socket's channel. The guarantees below hold for both kinds, the read-ahead
    bound too: past it, a pushed source's messages are held back, in order, until a dispatch of
    that source makes room (as a read source waits), so that the other source's (the page's
    ``websocket.disconnect``) never queue behind a backlog; held back when the consumer ends, they
    are lost with it, as a message read ahead is. A start that raises ends the loop at once, before
    any dispatch.

    Channels' ``await_many_dispatch`` does the same with a new task per message read and an
    ``asyncio.wait`` per message dispatched (a future, and callbacks added to and removed from
    every source's task). Here each source has one task for the consumer's life, which reads it
    in a loop and hands what it read to the consumer's own task (SourcesDispatch): a liveblog
    frame fanned out costs a fifth fewer CPU instructions (callgrind, one daphne process, 200
    sockets: 349,000 a frame with Channels' loop, 278,500 with this one). The guarantees stay
    Channels':

    - a source's messages are dispatched in the order it gave them, one at a time, each after
      the previous one's dispatch returned, however long that took (a slow handler delays, never
      reorders), and always in the calling task (its context variables: Django's connection);
    - a dispatch that raises (StopConsumer included) ends the loop with that exception, and so
      does a source that raises, once the messages read before it raised were dispatched: a
      ``websocket.disconnect`` already read still runs its handler (groups left, presence ended)
      when the layer fails meanwhile;
    - on the way out, by an exception or by the calling task's cancellation, every source's task
      is cancelled and awaited: nothing is left pending, and a source that cleans up when it is
      cancelled does (the core layer forgets its memberships, RedisCoreLayer.receive; the pub/sub
      layer's channel, pushed, is released by the consumer as it ends, MessagesLoop). A task that
      swallowed its cancellation is cancelled again (CANCEL_AGAIN_AFTER), where Channels would wait
      for it for ever.
      A source's task may be cancelled out of its source, too (waiting with two messages out):
      its clean-up then never runs, so the consumer releases its channel itself once this
      returns (MessagesLoop, realtime_common.consumers).

    **Read ahead.** Channels reads a source again only once its previous message was
    dispatched. Here a source is read again as soon as its message is handed over, so that one
    task step per message suffices (waiting for the dispatch before reading would need a second
    one); it waits when it has two messages out, the one dispatched and one read ahead. So at
    most one message per source is out of it that Channels would have left in it: a constant, a
    message's memory, with no idle cost. Back-pressure still holds: a consumer slower than its
    source stops reading it after that message, and the source's own buffer (the layer's
    channel capacity, the server's socket) fills as before. A message read ahead when the
    consumer ends is lost, as the one Channels read from the other source is: the consumer's
    channel and socket end with it.
    """
    await SourcesDispatch(sources=sources, dispatch=dispatch, pushed=pushed).run()


# A source's messages out of it at once: the one dispatched (or next) and one read ahead.
SOURCE_MESSAGES_OUT = 2
# A source's task still running this long after it was cancelled is cancelled again: Python 3.11's
# asyncio.wait_for, which redis-py sends each command through (when the connection has a socket
# timeout, as the core layer's has), swallows a cancellation that lands as the command it wraps
# completes (gh-86296, fixed in 3.12). The core layer's receive then goes on to wait for the
# channel's next message, which may never come: the consumer would never end. Not a rare race: a
# consumer of the core layer that leaves sends group_discard while its receive sends commands, and
# the tests meet it at every run. So short, and a source's clean-up that awaits must withstand a
# second cancellation: the pub/sub layer's unsubscribe, which waits for its Redis's lock behind
# publishes, is shielded, and awaited once more when the consumer releases its channel
# (realtime_common.layers, ResilientLoopLayer.channel_release).
CANCEL_AGAIN_AFTER = 0.1


class SourcesDispatch:
    """messages_dispatch's state: the messages read and not yet dispatched, in the order they were
    read (a list: it holds at most SOURCE_MESSAGES_OUT per source, and an empty one costs an idle
    socket less memory than a deque), each source's count of messages out, a pushed source's
    messages held back past that count, and the futures its task and the consumer's wait on."""

    def __init__(
        self,
        *,
        sources: Sequence[Callable[[], Awaitable[T]]],
        dispatch: Callable[[T], Awaitable[None]],
        pushed: Sequence[Callable[[Callable[[T], None]], Awaitable[None]]] = (),
    ):
        self.sources, self.dispatch, self.pushed = sources, dispatch, pushed
        self.ready: list[tuple[int, T]] = []
        count = len(sources) + len(pushed)
        self.out = [0] * count  # by source: read, and not yet dispatched
        self.resume: list[asyncio.Future | None] = [None] * count  # by source: its wait for a dispatch
        self.held: dict[int, deque[T]] | None = None  # by pushed source: its messages past the bound, while any
        self.wake: asyncio.Future | None = None  # the consumer's wait for a message or a source's end
        self.ended: asyncio.Task | None = None  # the first source's task that ended (it raised)
        self.read_before_end = 0  # of ``ready``, the messages read before ``ended``: dispatched first

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self.source_read(index=index)) for index in range(len(self.sources))]
        for task in tasks:
            task.add_done_callback(self.source_ended)
        try:
            for index, push in enumerate(self.pushed, start=len(self.sources)):
                await push(functools.partial(self.message_pushed, index))
            while True:
                if self.ended is not None and not self.read_before_end:
                    self.ended.result()  # a source's loop ends only by raising: this raises it
                if not self.ready:
                    self.wake = loop.create_future()
                    await self.wake
                    continue
                index, message = self.ready.pop(0)
                if self.ended is not None:
                    # Only those read before: the other sources go on reading, and a page that
                    # keeps sending would otherwise keep a consumer whose layer failed running.
                    self.read_before_end -= 1
                await self.dispatch(message)
                self.out[index] -= 1
                if (resume := self.resume[index]) is not None:
                    self.resume[index] = None
                    resume.set_result(None)
                elif self.held is not None and index in self.held:
                    self.message_release(index=index)
        finally:
            await self.sources_end(tasks=tasks)

    async def sources_end(self, *, tasks: list[asyncio.Task]) -> None:
        """Cancel the sources' tasks and wait until each has ended, cancelling again one that
        swallowed it (CANCEL_AGAIN_AFTER). The calling task cancelled meanwhile (daphne cancels a
        consumer slow to end, and a test's communicator when it is dropped, on top of the
        cancellation that began the exit) still waits for them, then ends cancelled: otherwise a
        source whose cancellation was swallowed would run on, and keep its event loop from closing."""
        pending, cancelled = set(tasks), False
        while pending:
            for task in pending:
                task.cancel()
            try:
                _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN_AFTER)
            except asyncio.CancelledError:
                cancelled = True
                pending = {task for task in pending if not task.done()}
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved: one that raised while another ended the loop is not logged
        if cancelled:
            raise asyncio.CancelledError

    async def source_read(self, *, index: int) -> None:
        source = self.sources[index]
        while True:
            if self.out[index] >= SOURCE_MESSAGES_OUT:
                self.resume[index] = asyncio.get_running_loop().create_future()
                await self.resume[index]
            message = await source()
            self.out[index] += 1
            self.ready.append((index, message))
            self.consumer_wake()

    def message_pushed(self, index: int, message: T) -> None:
        if self.out[index] >= SOURCE_MESSAGES_OUT:
            # Held back, as a read source would wait, behind those held before it.
            if self.held is None:
                self.held = {}
            self.held.setdefault(index, deque()).append(message)
            return
        self.out[index] += 1
        self.ready.append((index, message))
        self.consumer_wake()

    def message_release(self, *, index: int) -> None:
        """A dispatch of a pushed source made room: its oldest message held back is next."""
        held = self.held[index]
        self.out[index] += 1
        self.ready.append((index, held.popleft()))
        if not held:
            del self.held[index]

    def source_ended(self, task: asyncio.Task) -> None:
        if self.ended is None:
            self.ended, self.read_before_end = task, len(self.ready)
        self.consumer_wake()

    def consumer_wake(self) -> None:
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)
