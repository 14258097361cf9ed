"""Group messages that describe a database change, sent only once it is committed."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def group_send_on_commit(*, group: str, message: dict) -> None:
    """Send ``message`` to ``group`` after the current transaction commits; never for a rollback.

    robust: by then the change is saved, so a channel layer outage is logged
    instead of failing the save; pages make up for it when they catch up.
    """
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(group, message), robust=True)
