"""Reads."""

import functools
import inspect
from collections.abc import Collection, Mapping
from datetime import datetime
from importlib import import_module
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.backends import AllowAllUsersModelBackend, ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.db import router
from django.db.models import QuerySet
from django.db.models.query_utils import DeferredAttribute
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from realtime_common.models import StreamEvent
from realtime_common.streams import live_row_key, stream_frames_since, stream_seq

from .models import Message, Room
from .wire import message_frame, room_group

HISTORY_LENGTH = 50
# Where the session keeps the slugs of the rooms its sockets joined.
SESSION_ROOMS = "rooms.joined"


def room_list() -> QuerySet[Room]:
    return Room.objects.order_by("title")


def room_get(*, slug: str) -> Room | None:
    return Room.objects.filter(slug=slug).first()


def room_may_join(*, room: Room, user: AbstractBaseUser) -> bool:
    return user.is_staff or not room.staff_only


def message_sent_get(*, user: AbstractBaseUser, client_id: str | None) -> Message | None:
    """The user's message stored under the page's id; None when there is none (or no id)."""
    if client_id is None:
        return None
    return Message.objects.select_related("room", "user").filter(user=user, client_id=client_id).first()


def message_frame_stored(*, message: Message) -> dict:
    """The frame of the message's newest event in its room's stream, as pages got it (with its seq).
    Once the room no longer keeps that event (pruned, Message.live_retention newer ones at least), the frame is
    made again from the row with seq 0: no event for a page to apply, only the message."""
    events = StreamEvent.objects.filter(stream__name=message.live_stream(), row=live_row_key(instance=message))
    return events.order_by("-seq").values_list("frame", flat=True).first() or message_frame(message=message, seq=0)


class History(NamedTuple):
    frames: list[dict]  # oldest first
    seq: int  # where the page is once it has them
    more: bool  # what the page shows may not fit these (events before them, a `since` not honoured): start again


def room_history(*, room: Room, since: int | None = None) -> History:
    """What a page joining the room is sent: with ``since``, every event after it;
    without, or when those cannot all be sent (pruned, ``since`` ahead of the
    room's, more than HISTORY_LENGTH), the newest HISTORY_LENGTH events."""
    stream = room_group(room_id=room.pk)
    if since is not None:
        frames = stream_frames_since(stream=stream, seq=since)
        if frames is not None and len(frames) <= HISTORY_LENGTH:
            return History(frames=frames, seq=frames[-1]["seq"] if frames else since, more=False)
    events = StreamEvent.objects.filter(stream__name=stream).order_by("-seq").values_list("frame", flat=True)
    frames = list(events[:HISTORY_LENGTH])[::-1]
    # A ``since`` not honoured always means more, even with nothing before these: one
    # ahead of the room's (a room re-created, a database reset) would otherwise have
    # the page keep its old events and drop every new one up to its old seq.
    more = since is not None or (bool(frames) and frames[0]["seq"] > 1)
    return History(frames=frames, seq=frames[-1]["seq"] if frames else stream_seq(stream=stream), more=more)


def session_rooms(*, session: SessionBase, user: AbstractBaseUser) -> list[Room]:
    """The rooms kept in the session that still exist and the user may still join, in the order joined."""
    slugs = session.get(SESSION_ROOMS, [])
    rooms = {room.slug: room for room in Room.objects.filter(slug__in=slugs)}
    return [rooms[slug] for slug in slugs if slug in rooms and room_may_join(room=rooms[slug], user=user)]


def session_user_pk(*, data: Mapping) -> Any:
    """The pk of the user the session data is logged in as; None when it is no login."""
    try:
        return get_user_model()._meta.pk.to_python(data[SESSION_KEY])
    except (KeyError, ValidationError):
        return None


def session_login_valid(*, data: Mapping, users: Mapping[Any, AbstractBaseUser]) -> bool:
    """Whether Django would still log the session in (``django.contrib.auth.get_user``),
    given its data and its user (in ``users``, by pk) already read: a backend still
    configured, a user it lets in (ModelBackend: ``is_active``), and the auth hash of
    the user's current password. So a password change or a deactivation ends it."""
    backend_path = data.get(BACKEND_SESSION_KEY)
    user = users.get(session_user_pk(data=data))
    if user is None or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    # What ModelBackend.get_user checks, without its query per user.
    user_can_authenticate = getattr(load_backend(backend_path), "user_can_authenticate", None)
    if user_can_authenticate is not None and not user_can_authenticate(user):
        return False
    session_hash = data.get(HASH_SESSION_KEY)
    # The fallback hashes keep a login across a SECRET_KEY rotation, as over HTTP.
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return bool(session_hash) and any(constant_time_compare(session_hash, known) for known in hashes)


def session_data_logged_in(*, data: Mapping) -> bool:
    """``session_login_valid`` for session data already loaded: one query, for its user."""
    user_pk = session_user_pk(data=data)
    if user_pk is None:
        return False
    return session_login_valid(data=data, users=get_user_model()._default_manager.in_bulk([user_pk]))


# Sessions kept in each cache below, by their stored text: their decoded data (about 1 KB each),
# their user's pk, and their verdicts (with a user row each): some 30 MB at most in all.
SESSIONS_DECODED = 10_000


def sessions_logged_in(*, keys: Collection[str]) -> set[str]:
    """The keys, of ``keys``, whose session is still a login (``sessions_logged_in_until``)."""
    return set(sessions_logged_in_until(keys=keys))


def sessions_logged_in_until(*, keys: Collection[str]) -> dict[str, datetime]:
    """The keys, of ``keys``, whose session is still a login: stored, not expired, and
    ``session_login_valid``; each with its session's expiry, a login until then unless its
    session or user changes. Two queries however many keys: one parameter per key, far below
    SQLite's limit (32,766 by default since SQLite 3.32).

    Every session and user is read again, but judged again only when its session's text, its
    user's row, or a setting the verdict reads changed (``login_verdict``): a re-check of 2,000
    sockets' sessions each heartbeat otherwise built 2,000 users and hashed 2,000 passwords
    (38 ms a round against 19, warm).

    Sessions must be stored in the database (SESSION_ENGINE db or cached_db)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    rows = store.get_model_class().objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
    stored = {
        key: (text, expiry) for key, text, expiry in rows.values_list("session_key", "session_data", "expire_date")
    }
    user_pks = {key: session_text_user_pk(text) for key, (text, _) in stored.items()}
    user_rows = user_rows_read(pks=set(user_pks.values()) - {None})
    config = login_config_get()
    return {
        key: expiry
        for key, (text, expiry) in stored.items()
        if login_verdict(text=text, user_row=user_rows.get(user_pks[key]), config=config)
    }


def login_config_get() -> tuple:
    """The settings session_login_valid reads, a part of each cached verdict's key: a change of
    them judges every session again."""
    return (
        tuple(settings.AUTHENTICATION_BACKENDS),
        settings.SECRET_KEY,
        tuple(settings.SECRET_KEY_FALLBACKS),
        settings.AUTH_USER_MODEL,
    )


def user_rows_read(*, pks: Collection[Any]) -> dict[Any, tuple]:
    """The rows of these users, by pk: every concrete field, in the model's order (``Model.from_db``'s)."""
    model = get_user_model()
    fields = model._meta.concrete_fields
    pk_index = fields.index(model._meta.pk)
    rows = model._default_manager.filter(pk__in=pks).values_list(*(field.attname for field in fields))
    return {row[pk_index]: row for row in rows}


def login_verdict(*, text: str, user_row: tuple | None, config: tuple) -> bool:
    """``session_login_valid`` for a session's stored text and its user's row as read, cached by
    them and ``config`` when nothing else can change the verdict: Django's own checks of a user
    (``ModelBackend.user_can_authenticate``, ``AbstractBaseUser``'s session auth hashes), which
    read the row alone. A backend or user model of a project's own may read more (the time,
    another table): judged every time, as is a row that cannot be a cache key (a JSONField's
    dict), so such a project's re-checks cost what they did before the cache."""
    if user_row is None:
        return False
    try:
        hash(user_row)
    except TypeError:
        return login_verdict_judge(text=text, user_row=user_row, config=config)
    if not login_checks_django_s(backend_path=session_data_decode(text).get(BACKEND_SESSION_KEY), config=config):
        return login_verdict_judge(text=text, user_row=user_row, config=config)
    return login_verdict_cached(text=text, user_row=user_row, config=config)


DJANGO_S_USER_CHECKS = (ModelBackend.user_can_authenticate, AllowAllUsersModelBackend.user_can_authenticate)


@functools.lru_cache(maxsize=64)
def login_checks_django_s(*, backend_path: str | None, config: tuple) -> bool:
    """Whether a verdict on a session logged in with this backend reads nothing but the user's row and
    ``config`` (the settings): Django's own ``user_can_authenticate`` (``is_active``, a field, or
    AbstractBaseUser's True, not a property) and session auth hashes. Once per backend and settings."""
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return True  # refused without looking at the user
    user_class = get_user_model()
    return (
        getattr(type(load_backend(backend_path)), "user_can_authenticate", None) in DJANGO_S_USER_CHECKS
        and isinstance(inspect.getattr_static(user_class, "is_active", True), bool | DeferredAttribute)
        and user_class.get_session_auth_hash is AbstractBaseUser.get_session_auth_hash
        and user_class.get_session_auth_fallback_hash is AbstractBaseUser.get_session_auth_fallback_hash
        and user_class._get_session_auth_hash is AbstractBaseUser._get_session_auth_hash
    )


def login_verdict_judge(*, text: str, user_row: tuple, config: tuple) -> bool:
    """The verdict itself: the user built from its row, as a query would, and ``session_login_valid``
    (``config``: what else it reads, a part of the cache's key)."""
    model = get_user_model()
    user = model.from_db(router.db_for_read(model), [field.attname for field in model._meta.concrete_fields], user_row)
    return session_login_valid(data=session_data_decode(text), users={user.pk: user})


login_verdict_cached = functools.lru_cache(maxsize=SESSIONS_DECODED)(login_verdict_judge)


@functools.lru_cache(maxsize=SESSIONS_DECODED)
def session_text_user_pk(text: str) -> Any:
    """``session_user_pk`` of a stored session's text, cached by it as ``session_data_decode`` is."""
    return session_user_pk(data=session_data_decode(text))


@functools.lru_cache(maxsize=SESSIONS_DECODED)
def session_data_decode(data: str) -> Mapping:
    """The stored session data (``session_data``), decoded; not to be changed: it is shared.

    Cached by the text itself: the same text always decodes to the same data (under the
    process's one SECRET_KEY), and a session's text changes with any change of its data.
    A re-check of every socket's session each heartbeat then decodes only those that
    changed since the last (a signature check, zlib and JSON: 40 % of a re-check's CPU
    otherwise). Sized for every session of a process's sockets: a smaller LRU, read in
    the same order every round, would miss every time."""
    return import_module(settings.SESSION_ENGINE).SessionStore().decode(data)


def session_logged_in(*, session_key: str) -> bool:
    return bool(sessions_logged_in(keys=[session_key]))
