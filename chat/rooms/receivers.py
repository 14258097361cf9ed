"""Signal receivers: a logout, from any view, closes the sockets of that session; a
saved or deleted user has their sockets' sessions re-checked at once; a deleted room
takes its stream of events with it."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_delete

from realtime_common.streams import stream_delete

from .models import Room
from .services import session_sockets_close, user_sessions_recheck
from .wire import room_group

# What a login saves of its user (update_last_login): nothing a session depends on.
LOGIN_FIELDS = frozenset({"last_login"})


def logged_out(sender, request, user, **kwargs) -> None:
    # Sent before the session is flushed: its key still names the sockets to close.
    if user is not None and request.session.session_key:  # user None: the visitor was not logged in
        session_sockets_close(session_key=request.session.session_key)


def user_saved(sender, instance, created: bool, raw: bool, update_fields: frozenset | None, **kwargs) -> None:
    # A new user has no sockets yet; loaddata (raw) changes no live login.
    if created or raw or update_fields == LOGIN_FIELDS:
        return
    user_sessions_recheck(user_id=instance.pk)


def user_deleted(sender, instance, **kwargs) -> None:
    user_sessions_recheck(user_id=instance.pk)


def room_deleting(sender, instance: Room, **kwargs) -> None:
    # Before the cascade deletes the room's messages, in its transaction: they then find
    # no stream to write their deleted events to, and the room's pages are told it is gone.
    stream_delete(stream=room_group(room_id=instance.pk))


def connect() -> None:
    user_logged_out.connect(logged_out, dispatch_uid="rooms.logged_out")
    post_save.connect(user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="rooms.user_saved")
    post_delete.connect(user_deleted, sender=settings.AUTH_USER_MODEL, dispatch_uid="rooms.user_deleted")
    pre_delete.connect(room_deleting, sender=Room, dispatch_uid="rooms.room_deleting")
