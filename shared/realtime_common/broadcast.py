"""Group messages that describe a database change, sent only once it is committed;
and group messages sent at once, whose failure is logged rather than raised."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .layers import REDIS_DOWN, error_text
from .outages import OutageLog

logger = logging.getLogger(__name__)


def group_send_on_commit(*, group: str, message: dict) -> None:
    """Send ``message`` to ``group`` after the current transaction commits; never for a rollback.

    robust: by then the change is saved, so a channel layer outage is logged
    instead of failing the save; pages make up for it when they catch up.
    """
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(group, message), robust=True)


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
        GROUP_SENDS.failed(error_text(error))
        return False
    GROUP_SENDS.worked()
    return True
