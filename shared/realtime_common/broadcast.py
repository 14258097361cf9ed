"""Group messages that describe a database change, sent only once it is committed;
and group messages sent at once, whose failure is logged rather than raised."""

import asyncio
import contextvars
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from .layers import REDIS_DOWN, error_text
from .loops import loop_local
from .metrics import group_send_counted
from .outages import OutageLog

logger = logging.getLogger(__name__)

T = TypeVar("T")
Send = Callable[..., Awaitable[None]]


def group_send_on_commit(*, group: str, messages: Sequence[dict]) -> None:
    """Send ``messages`` to ``group``, in order, after the current transaction commits; never for a rollback.

    One hook for them all: outside an event loop each async_to_sync starts one, and a
    deletion may send hundreds of messages. robust: by then the change is saved, so a
    channel layer outage is logged (and ends the sending) instead of failing the save;
    pages make up for what they missed when they catch up.

    Each message carries ``committed``, the time of the commit (time.time(), comparable
    across hosts with synchronised clocks): a consumer that sends it on to its page
    measures the delay pages see (realtime_common.metrics).
    """

    async def send(*, committed: float) -> None:
        layer = get_channel_layer()
        for message in messages:
            try:
                await layer.group_send(group, {**message, "committed": committed})
            except Exception:
                group_send_counted(sent=False)
                raise
            group_send_counted(sent=True)

    if (committed := COMMITTED.get()) is not None:
        # In a call of database_sync_to_async_sending: its event loop sends them once the call returns.
        transaction.on_commit(lambda: committed.append((send, time.time(), len(messages))), robust=True)
        return
    # The time taken in the hook, before async_to_sync's hop to an event loop that may be busy: that wait is
    # part of the delay pages see.
    transaction.on_commit(lambda: async_to_sync(send)(committed=time.time()), robust=True)


# Set by database_sync_to_async_sending for its call: where group_send_on_commit puts what it commits (the
# send, the commit's time, how many group messages).
Committed = tuple[Send, float, int]
COMMITTED: contextvars.ContextVar[list[Committed] | None] = contextvars.ContextVar("committed", default=None)


class CommittedSends:
    """What an event loop's calls of database_sync_to_async_sending committed, sent by one task of
    that loop in the order the calls ended, which is their commits' order (the process's one ORM
    thread runs them one after another). So the events of a stream that this process writes
    through these calls reach its group in seq order (a page that gets seq 6 before 5 reads the
    database to catch up); those of another writer (another process, a call that does not go
    through here) may come before or after them, as they always could.

    Bounded: while the channel layer hangs (each send waits for its timeout), at most QUEUE_LIMIT
    commits' sends wait; the oldest are given up (counted as failed group sends, logged once per
    outage), as pages catch up by seq."""

    QUEUE_LIMIT = 10_000

    def __init__(self) -> None:
        self.queue: deque[tuple[Committed, asyncio.Future | None]] = deque()
        self.task: asyncio.Task | None = None

    def put(self, *, sends: list[Committed]) -> asyncio.Future:
        """Queue one call's sends; a future done once they were sent, or given up."""
        done = asyncio.get_running_loop().create_future()
        for number, committed in enumerate(sends, start=1):
            self.queue.append((committed, done if number == len(sends) else None))
        dropped = 0
        while len(self.queue) > self.QUEUE_LIMIT:
            (_, _, messages), given_up = self.queue.popleft()
            dropped += messages
            if given_up is not None and not given_up.done():
                given_up.set_result(None)
        if dropped:
            group_send_counted(sent=False, count=dropped)
            GROUP_SENDS.failed(f"{self.QUEUE_LIMIT:,} commits wait to be sent; {dropped} group messages given up")
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.queue_send())
        return done

    async def queue_send(self) -> None:
        try:
            while self.queue:
                (send, committed, _), done = self.queue.popleft()
                try:
                    await send(committed=committed)
                except REDIS_DOWN as error:
                    GROUP_SENDS.failed(error_text(error))
                except Exception:
                    # What on_commit(robust=True) does with a hook that raises: the change is saved,
                    # and pages catch up on what they missed.
                    logger.exception("group_send_on_commit: a committed change was not sent")
                else:
                    GROUP_SENDS.worked()
                finally:
                    if done is not None and not done.done():
                        done.set_result(None)
        except BaseException:
            # Cancelled (a loop ended by asyncio.run; daphne stops its loop without cancelling this task,
            # and what is left goes with it), or worse: what is left is not sent, pages catch up, and
            # no caller waits for it for ever.
            if self.queue:
                logger.warning(
                    "group_send_on_commit: %d committed changes not sent: the sending task ended", len(self.queue)
                )
            for _, done in self.queue:
                if done is not None and not done.done():
                    done.set_result(None)
            self.queue.clear()
            raise


committed_sends_get = loop_local(CommittedSends)


async def database_sync_to_async_sending(function: Callable[..., T], /, **kwargs: Any) -> T:
    """``database_sync_to_async(function)(**kwargs)``, with the group messages that its commits
    send (group_send_on_commit) sent from this event loop: it returns once they are sent, in commit
    order with those of the loop's other such calls (``CommittedSends``).

    Not from the ORM's thread, through async_to_sync: that is a hop back to the loop and a wait,
    which also holds the thread (and every other socket's database call queued behind it) until
    the busy loop gets to the send. Profiled on a chat message (py-spy, one daphne): the ORM thread
    spent two fifths of its samples there.

    For a long-lived event loop (a server's): cancelled (the socket closed), the call still runs to
    its end in its thread, and what it commits is still sent, by the loop's sending task. A call
    that raises after a commit raises without waiting for that commit's sends."""
    committed: list[Committed] = []
    token = COMMITTED.set(committed)
    try:
        # The task takes a copy of this context, and the thread a copy of the task's.
        call = asyncio.ensure_future(database_sync_to_async(function)(**kwargs))
    finally:
        COMMITTED.reset(token)
    sent: asyncio.Future | None = None

    def sends_queue(_: asyncio.Future) -> None:
        # Called as the call ends, before its caller resumes: the calls queue in the order they end.
        nonlocal sent
        if committed:
            sent = committed_sends_get().put(sends=committed)

    call.add_done_callback(sends_queue)
    result = await asyncio.shield(call)
    if sent is not None:
        await sent
    return result


GROUP_SENDS = OutageLog(
    logger=logger,
    failing="group_send: the channel layer is unavailable (%s); pages catch up once it is back",
    working="group_send: the channel layer works again ({failures} messages were not sent)",
)


async def group_send_logged(*, group: str, message: dict) -> bool:
    """Send now, when what the message tells is saved already (or need not be): a
    channel layer outage is logged, once, instead of raised; False if it was not sent."""
    try:
        await get_channel_layer().group_send(group, message)
    except REDIS_DOWN as error:
        group_send_counted(sent=False)
        GROUP_SENDS.failed(error_text(error))
        return False
    group_send_counted(sent=True)
    GROUP_SENDS.worked()
    return True
