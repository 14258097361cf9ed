"""Group messages that describe a database change, sent only once it is committed;
and group messages sent at once, whose failure is logged rather than raised."""

import logging
import time
from collections.abc import Sequence

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .layers import REDIS_DOWN, error_text
from .metrics import group_send_counted
from .outages import OutageLog

logger = logging.getLogger(__name__)


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

    # The time taken in the hook, before async_to_sync's hop to an event loop that may be busy: that wait is
    # part of the delay pages see.
    transaction.on_commit(lambda: async_to_sync(send)(committed=time.time()), robust=True)


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
