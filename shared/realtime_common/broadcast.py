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

    if (sends := COMMITTED_SENDS.get()) is not None:
        # In a call of database_sync_to_async_sending: its event loop sends them once the call returns.
        transaction.on_commit(lambda: sends.put(send=send, committed=time.time()), robust=True)
        return
    # The time taken in the hook, before async_to_sync's hop to an event loop that may be busy: that wait is
    # part of the delay pages see.
    transaction.on_commit(lambda: async_to_sync(send)(committed=time.time()), robust=True)


class CommittedSends:
    """The group messages committed by an event loop's calls of database_sync_to_async_sending, sent
    by one task of that loop in the order of their commits (which the process's one ORM thread
    makes one after another): a room's events reach its group in seq order, not as each call's
    task happens to resume (a page that gets seq 6 before 5 reads the database to catch up)."""

    def __init__(self) -> None:
        self.queue: deque[tuple[Send, float]] = deque()  # appended in the ORM's thread, read in the loop's
        self.task: asyncio.Task | None = None

    def put(self, *, send: Send, committed: float) -> None:
        self.queue.append((send, committed))

    def sending_start(self) -> None:
        if self.queue and (self.task is None or self.task.done()):
            self.task = asyncio.get_running_loop().create_task(self.queue_send())

    async def queue_send(self) -> None:
        while self.queue:
            send, committed = self.queue.popleft()
            try:
                await send(committed=committed)
            except Exception:
                # What on_commit(robust=True) does with a hook that raises: the change is saved,
                # and pages catch up on what they missed.
                logger.exception("group_send_on_commit: a committed change was not sent")


committed_sends = loop_local(CommittedSends)
COMMITTED_SENDS: contextvars.ContextVar[CommittedSends | None] = contextvars.ContextVar("committed_sends", default=None)


async def database_sync_to_async_sending(function: Callable[..., T], /, **kwargs: Any) -> T:
    """``database_sync_to_async(function)(**kwargs)``, with the group messages that its commits
    send (group_send_on_commit) sent from this event loop once the call returns, in commit order.

    Not from the ORM's thread, through async_to_sync: that is a hop back to the loop and a wait,
    which also holds the thread (and every other socket's database call queued behind it) until
    the busy loop gets to the send. Profiled on a chat message (callgrind, one daphne): 6 % of its
    instructions, and two of its four thread hand-offs.

    Cancelled (the socket closed), the call still runs to its end in its thread, and what it
    commits is still sent."""
    sends = committed_sends()
    token = COMMITTED_SENDS.set(sends)
    try:
        # The task takes a copy of this context, and the thread a copy of the task's.
        call = asyncio.ensure_future(database_sync_to_async(function)(**kwargs))
    finally:
        COMMITTED_SENDS.reset(token)
    call.add_done_callback(lambda _: sends.sending_start())
    return await asyncio.shield(call)


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
