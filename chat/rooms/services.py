"""Writes: messages (each an event of its room's stream, broadcast after commit),
rate limits, the rooms kept in a session, and telling sockets their session ended."""

import logging
from collections.abc import Callable
from functools import partial
from importlib import import_module

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction

from realtime_common.broadcast import group_send_on_commit
from realtime_common.metrics import site_inc
from realtime_common.throttle import window_allow, window_return

from .metrics import MESSAGES_STORED
from .models import Message, Room
from .selectors import SESSION_ROOMS, message_sent_get, session_data_logged_in, session_logged_in
from .wire import session_group, user_group

logger = logging.getLogger(__name__)


class MessageRateLimited(Exception):
    """The user sent more new messages than CHAT_RATE_LIMIT_MESSAGES in the current window."""


class ClientIdTaken(Exception):
    """The user's client_id names another message already stored (another text or room)."""


class SessionEnded(Exception):
    """The session of the socket writing is no login any more (sessions.py): nothing was written."""


def message_create(*, room: Room, user: AbstractBaseUser, text: str, client_id: str | None = None) -> Message:
    # Message is a LiveModel: stored with its event and seq in one transaction (a savepoint
    # in a caller's), sent to the room once committed; pages that miss it catch up by seq.
    with transaction.atomic():
        # Counted once committed (a transaction rolled back stored nothing), and before the
        # broadcast that the create sets up for its commit: a message a page got is counted.
        transaction.on_commit(partial(site_inc, MESSAGES_STORED))
        return Message.objects.create(room=room, user=user, text=text, client_id=client_id)


def message_send(
    *,
    session_key: str,
    room: Room,
    user: AbstractBaseUser,
    text: str,
    client_id: str | None,
    session_trusted: Callable[[], bool] | None = None,
) -> tuple[Message, bool]:
    """Store the user's message once per client_id, if the session of the socket sending it is
    still a login: (it, True) when stored now, or (the message stored under this id already,
    False) for a resend: the page could not tell whether its first send got there. Only a new
    message counts against the user's rate. SessionEnded when the session is no login;
    MessageRateLimited when over the rate; ClientIdTaken when the id names another message
    (another text or room).

    The session is checked here (two queries) unless ``session_trusted()``, asked just before the
    write, says the process's latest re-check of its sessions vouches for it (sessions.SessionWatch).

    All of it in one call, which the consumer makes in the ORM's thread: every
    database_sync_to_async call is a hop to that thread and back, queued behind the rest of
    the process's database work, and on Postgres a health check of the connection."""
    if not (session_trusted and session_trusted()) and not session_logged_in(session_key=session_key):
        raise SessionEnded
    # Counted before the INSERT, so that a message over the rate is never stored.
    if message_rate_allow(user_id=user.pk):
        try:
            # The INSERT first, with no look-up for a resend before it: resends are rare, and the
            # unique constraint (Message.Meta) finds them anyway. In a transaction of its own, or
            # a savepoint in the caller's: a failed INSERT is undone alone.
            return message_create(room=room, user=user, text=text, client_id=client_id), True
        except IntegrityError:
            # The id is taken: the INSERT waited for the commit of the send that took it, so
            # that one is now visible. Nothing found: the error was something else (e.g. the
            # room is gone).
            if (stored := message_sent_get(user=user, client_id=client_id)) is None:
                raise
    elif (stored := message_sent_get(user=user, client_id=client_id)) is None:
        raise MessageRateLimited
    # A resend (answered even over the rate) or a page's bug below: no new message, not counted.
    message_rate_return(user_id=user.pk)
    if (stored.room_id, stored.text) != (room.pk, text):
        # A page's bug: one id for two messages. Storing the second would lose it to the first.
        raise ClientIdTaken
    return stored, False


def message_rate_allow(*, user_id: int) -> bool:
    """Count one message of the user, over all their tabs and every process; False once over the limit."""
    return window_allow(
        key=message_rate_key(user_id=user_id),
        limit=settings.CHAT_RATE_LIMIT_MESSAGES,
        seconds=settings.CHAT_RATE_LIMIT_SECONDS,
    )


def message_rate_return(*, user_id: int) -> None:
    """Uncount a message that message_rate_allow counted but that was no new message."""
    window_return(key=message_rate_key(user_id=user_id), seconds=settings.CHAT_RATE_LIMIT_SECONDS)


def message_rate_key(*, user_id: int) -> str:
    return f"rooms:messages:{user_id}"


def membership_rate_allow(*, user_id: int) -> bool:
    """Count one join or leave of the user (each writes the session), over all their tabs and every process."""
    return window_allow(
        key=f"rooms:joins:{user_id}", limit=settings.CHAT_JOIN_LIMIT, seconds=settings.CHAT_JOIN_SECONDS
    )


def ticket_rate_allow(*, user_id: int) -> bool:
    """Count one socket ticket of the user (each a cache entry for 30 s), over all their tabs and every process."""
    return window_allow(
        key=f"rooms:tickets:{user_id}", limit=settings.CHAT_TICKET_LIMIT, seconds=settings.CHAT_TICKET_SECONDS
    )


@transaction.atomic
def session_rooms_update(*, session_key: str, join: str | None = None, leave: str | None = None) -> bool:
    """Add a room's slug to, or remove it from, the rooms kept in the session.
    False, and nothing changed, when the session is no longer a login: logged
    out, expired, or its user's password changed or account deactivated.

    The session is read afresh, not taken from the socket's handshake: every tab
    of the browser shares it and changes it. Two tabs changing it at once queue up,
    so neither overwrites the other's room: on Postgres by the session row's lock,
    taken before the read and held until commit; on SQLite (which has no row locks)
    by its one write lock, taken as the transaction starts (realtime_common.settings).
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore
    # Evaluated for the lock alone: load() below then reads what the last writer committed.
    store.get_model_class().objects.select_for_update().filter(session_key=session_key).exists()
    session = store(session_key)
    slugs = session.get(SESSION_ROOMS, [])
    # load() found no live session under this key, or its user may no longer use it.
    if session.session_key is None or not session_data_logged_in(data=session):
        return False
    session[SESSION_ROOMS] = [slug for slug in slugs if slug not in (join, leave)] + ([join] if join else [])
    session.save()
    return True


def session_sockets_close(*, session_key: str) -> None:
    """Close every open socket of this session (one browser's login), in every process."""
    try:
        async_to_sync(get_channel_layer().group_send)(session_group(session_key=session_key), {"type": "session.ended"})
    except Exception:  # whatever failed, the logout goes on
        # The logout itself must still succeed. Its sockets then close at the next
        # re-check of their process's sessions, which finds this one gone.
        logger.exception("could not tell the sockets of an ended session to close")


def user_sessions_recheck(*, user_id: int) -> None:
    """Once committed, have every process holding sockets of this user re-check their
    sessions now, rather than at their next heartbeat: a change of the user (a new
    password, a deactivation, a deletion) may have ended them."""
    group_send_on_commit(group=user_group(user_id=user_id), messages=[{"type": "user.sessions_changed"}])
