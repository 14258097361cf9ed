"""Reads."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import QuerySet

from .models import Message, Room

HISTORY_LENGTH = 50
# Where the session keeps the slugs of the rooms its sockets joined.
SESSION_ROOMS = "rooms.joined"


def room_list() -> QuerySet[Room]:
    return Room.objects.order_by("title")


def room_get(*, slug: str) -> Room | None:
    return Room.objects.filter(slug=slug).first()


def room_may_join(*, room: Room, user: AbstractBaseUser) -> bool:
    return user.is_staff or not room.staff_only


def message_history(*, room: Room, since: int | None = None) -> list[Message]:
    """Oldest first: the newest HISTORY_LENGTH messages, or with ``since`` every one after that id."""
    messages = room.messages.select_related("room", "user")
    if since is not None:
        return list(messages.filter(id__gt=since).order_by("id"))
    return list(reversed(messages.order_by("-id")[:HISTORY_LENGTH]))


def session_rooms(*, session: SessionBase, user: AbstractBaseUser) -> list[Room]:
    """The rooms kept in the session that still exist and the user may still join, in the order joined."""
    slugs = session.get(SESSION_ROOMS, [])
    rooms = {room.slug: room for room in Room.objects.filter(slug__in=slugs)}
    return [rooms[slug] for slug in slugs if slug in rooms and room_may_join(room=rooms[slug], user=user)]
