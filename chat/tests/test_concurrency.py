"""Writers at once, each on a connection of its own (``concurrent_writers``: on Postgres,
where SQLite's single writer no longer queues them): two tabs of one browser change
the rooms kept in its session, people post in one room; and a write that waits for
another's lock past the timeout is answered "busy"."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connections, transaction
from django.db.models import QuerySet
from django.test import Client

from realtime_common.models import Stream
from realtime_common.streams import stream_frames_since
from rooms.models import Message
from rooms.selectors import SESSION_ROOMS
from rooms.services import message_create, session_rooms_update
from rooms.wire import room_group
from tests.helpers import join, say

pytestmark = pytest.mark.django_db(transaction=True)


def test_tabs_joining_and_leaving_rooms_at_once_each_keep_their_change(concurrent_writers, users):
    client = Client()
    client.force_login(users["alice"])
    session = SessionStore(client.session.session_key)
    session[SESSION_ROOMS] = ["a", "b", "c", "d"]
    session.save()

    changes = [{"leave": "a"}, {"leave": "b"}, *({"join": slug} for slug in ["e", "f", "g", "h", "i", "j"])]
    updates = [partial(session_rooms_update, session_key=session.session_key, **change) for change in changes]
    assert concurrent_writers(*updates) == [True] * len(changes)
    assert sorted(SessionStore(session.session_key)[SESSION_ROOMS]) == ["c", "d", "e", "f", "g", "h", "i", "j"]


def test_messages_sent_at_once_in_a_room_get_its_next_seqs_one_each(concurrent_writers, users, chat_rooms):
    lobby = chat_rooms["lobby"]
    sends = [
        partial(message_create, room=lobby, user=users[name], text=f"{name} {n}") for name in users for n in range(2)
    ]
    messages = concurrent_writers(*sends)
    frames = stream_frames_since(stream=room_group(room_id=lobby.pk), seq=0)
    assert [frame["seq"] for frame in frames] == list(range(1, len(sends) + 1))
    assert sorted(frame["id"] for frame in frames) == sorted(message.pk for message in messages)


@sync_to_async
def rooms_kept(*, session_key: str) -> list[str]:
    return SessionStore(session_key)[SESSION_ROOMS]


@contextmanager
def lock_held(*, rows: QuerySet) -> Iterator[None]:
    """Another connection holds these rows locked until the block ends. On SQLite its
    transaction holds the write lock of the whole database, which the in-memory test
    database refuses to other writers at once rather than after the timeout."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                assert rows.select_for_update().exists()
                locked.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=60)
        yield
    finally:
        release.set()
        holder.join()


@pytest.mark.parametrize(
    ("command", "locked"),
    [
        # Sending locks the room's stream row (for its next seq); joining, the session's row.
        ({"command": "send", "room": "lobby", "text": "second"}, "stream"),
        ({"command": "join", "room": "random"}, "session"),
    ],
)
async def test_a_write_waiting_for_a_lock_past_the_timeout_is_busy_changes_nothing_and_the_socket_stays_open(
    logged_in, users, chat_rooms, command, locked
):
    alice = await logged_in(users["alice"])
    socket = await alice.open_tab()
    await join(socket, "lobby")
    await say(socket, "lobby", "first")  # the room's stream has its row from now on
    assert (await socket.receive_json_from())["text"] == "first"
    rows = {
        "stream": Stream.objects.filter(name=room_group(room_id=chat_rooms["lobby"].pk)),
        "session": Session.objects.filter(session_key=alice.session_key),
    }[locked]
    with lock_held(rows=rows):
        await socket.send_json_to(command)
        # After DJANGO_DATABASE_TIMEOUT on Postgres: 2 s in the tests.
        error = await socket.receive_json_from(timeout=10)
    assert error["code"] == "busy", error
    assert await sync_to_async(list)(Message.objects.values_list("text", flat=True)) == ["first"]
    assert await rooms_kept(session_key=alice.session_key) == ["lobby"]
    await say(socket, "lobby", "third")
    assert (await socket.receive_json_from())["text"] == "third"
