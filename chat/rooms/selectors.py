"""Reads."""

from typing import NamedTuple

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import QuerySet

from realtime_common.models import StreamEvent
from realtime_common.streams import stream_frames_since, stream_seq

from .models import Room
from .wire import room_group

HISTORY_LENGTH = 50
# Where the session keeps the slugs of the rooms its sockets joined.
SESSION_ROOMS = "rooms.joined"


def room_list() -> QuerySet[Room]:
    return Room.objects.order_by("title")


def room_get(*, slug: str) -> Room | None:
    return Room.objects.filter(slug=slug).first()


def room_may_join(*, room: Room, user: AbstractBaseUser) -> bool:
    return user.is_staff or not room.staff_only


class History(NamedTuple):
    frames: list[dict]  # oldest first
    seq: int  # where the page is once it has them
    more: bool  # the room had events before these that the page may not have: it must start again from these


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
    if not frames:
        return History(frames=[], seq=stream_seq(stream=stream), more=False)
    return History(frames=frames, seq=frames[-1]["seq"], more=frames[0]["seq"] > 1)


def session_rooms(*, session: SessionBase, user: AbstractBaseUser) -> list[Room]:
    """The rooms kept in the session that still exist and the user may still join, in the order joined."""
    slugs = session.get(SESSION_ROOMS, [])
    rooms = {room.slug: room for room in Room.objects.filter(slug__in=slugs)}
    return [rooms[slug] for slug in slugs if slug in rooms and room_may_join(room=rooms[slug], user=user)]
