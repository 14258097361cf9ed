"""Writes: messages (each an event of its room's stream, broadcast after commit),
rate limits, the rooms kept in a session, and the end of a session."""

import logging
from importlib import import_module

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from realtime_common.throttle import window_allow

from .models import Message, Room
from .selectors import SESSION_ROOMS
from .wire import user_group

logger = logging.getLogger(__name__)


def message_create(*, room: Room, user: AbstractBaseUser, text: str) -> Message:
    # Message is a LiveModel: stored with its event and seq in one transaction,
    # sent to the room once committed; pages that miss it catch up by seq.
    return Message.objects.create(room=room, user=user, text=text)


def message_rate_allow(*, user_id: int) -> bool:
    """Count one message of the user, over all their tabs and every process; False once over the limit."""
    return window_allow(
        key=f"rooms:messages:{user_id}", limit=settings.CHAT_RATE_LIMIT_MESSAGES, seconds=settings.CHAT_RATE_LIMIT_SECONDS
    )


@transaction.atomic
def session_rooms_update(*, session_key: str, join: str | None = None, leave: str | None = None) -> bool:
    """Add a room's slug to, or remove it from, the rooms kept in the session.
    False when the session is gone: logged out or expired.

    The session is read afresh, not taken from the socket's handshake: every tab
    of the browser shares it and changes it. SQLite's IMMEDIATE transactions
    (realtime_common.settings) make concurrent changes queue up.
    """
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    slugs = session.get(SESSION_ROOMS, [])
    if session.session_key is None:  # load() found no live session under this key
        return False
    session[SESSION_ROOMS] = [slug for slug in slugs if slug not in (join, leave)] + ([join] if join else [])
    session.save()
    return True


def user_sockets_close(*, user_id: int) -> None:
    """Close every open socket of this user."""
    try:
        async_to_sync(get_channel_layer().group_send)(user_group(user_id=user_id), {"type": "user.logged_out"})
    except Exception:  # noqa: BLE001 - whatever failed, the logout goes on
        # The logout itself must still succeed. Its sockets then live on until
        # they next change the session (join, leave), which closes them.
        logger.exception("could not tell the sockets of an ended session to close")
