"""The chat socket when Redis or the database fails at the wrong moment: while a socket
enters a room (a join, or a connect putting it back into the session's rooms), and with
a ``since`` the room's stream cannot honour. Against the in-memory and the Redis layer.

Redis is made to fail where the test needs it (the presence store's ``apply`` raises
what redis-py raises when Redis is away); ``faults/`` stops the real one."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from rooms.presence import registry_get
from rooms.selectors import SESSION_ROOMS, History, room_history
from rooms.services import message_create
from tests.helpers import join, say

pytestmark = pytest.mark.django_db(transaction=True)
# The socket tests run against both layers; the selector's, once.
both_layers = pytest.mark.usefixtures("channel_layer")


def presence_store_fail(monkeypatch, *, room_ids: set[int]) -> None:
    """From now on, until the test undoes it, the presence store cannot be reached for these rooms."""
    store = registry_get().store_get()
    apply = store.apply

    async def failing_apply(*, changes, **kwargs):
        if any(change.room_id in room_ids for change in changes):
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await apply(changes=changes, **kwargs)

    monkeypatch.setattr(store, "apply", failing_apply)


def history_fail(monkeypatch) -> None:
    """From now on, reading a room's history finds the database locked past its timeout."""

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr("rooms.consumers.room_history", locked)


@sync_to_async
def rooms_kept(*, session_key: str) -> list[str]:
    return SessionStore(session_key).get(SESSION_ROOMS, [])


@both_layers
@pytest.mark.parametrize(
    ("fail", "code"),
    [
        (lambda monkeypatch, room: presence_store_fail(monkeypatch, room_ids={room.pk}), "unavailable"),
        (lambda monkeypatch, room: history_fail(monkeypatch), "busy"),
    ],
    ids=["presence-store-down", "database-locked"],
)
async def test_a_join_that_fails_midway_leaves_no_part_of_the_room_behind(
    logged_in, users, chat_rooms, monkeypatch, fail, code
):
    alice = await logged_in(users["alice"])
    socket = await alice.open_tab()
    fail(monkeypatch, chat_rooms["lobby"])
    await socket.send_json_to({"command": "join", "room": "lobby"})
    error = await socket.receive_json_from()
    assert (error["type"], error["code"]) == ("error", code)
    monkeypatch.undo()

    # Not half in it: the socket does not follow the room, nor counts its user in it.
    await say(socket, "lobby", "am I in?")
    assert (await socket.receive_json_from())["code"] == "not_joined"
    counted = registry_get().rooms.get(chat_rooms["lobby"].pk)
    assert counted is None or "alice" not in counted.counts
    bob = await (await logged_in(users["bob"])).open_tab()
    assert (await join(bob, "lobby"))["members"] == ["bob"]
    # The session keeps the room (the join changed it first): joining again, or the next connect, enters it.
    assert await rooms_kept(session_key=alice.session_key) == ["lobby"]
    assert (await join(socket, "lobby"))["members"] == ["alice", "bob"]


@both_layers
async def test_a_room_of_the_session_that_cannot_be_entered_on_connect_is_named_and_kept(
    logged_in, users, chat_rooms, monkeypatch
):
    alice = await logged_in(users["alice"])
    first_tab = await alice.open_tab()
    await join(first_tab, "lobby")
    await join(first_tab, "random")
    await first_tab.disconnect()

    presence_store_fail(monkeypatch, room_ids={chat_rooms["lobby"].pk})
    second_tab = await alice.open_tab()
    frames = [await second_tab.receive_json_from() for _ in range(2)]
    assert [(frame["type"], frame.get("code"), frame["room"]) for frame in frames] == [
        ("error", "unavailable", "lobby"),
        ("joined", None, "random"),
    ]
    # The socket stays open, in the rooms it could enter.
    await say(second_tab, "random", "still here")
    assert (await second_tab.receive_json_from())["text"] == "still here"
    await say(second_tab, "lobby", "and here?")
    assert (await second_tab.receive_json_from())["code"] == "not_joined"

    # The session kept the room: once Redis is back, the next connect enters it.
    monkeypatch.undo()
    assert await rooms_kept(session_key=alice.session_key) == ["lobby", "random"]
    third_tab = await alice.open_tab()
    assert [(await third_tab.receive_json_from())["room"] for _ in range(2)] == ["lobby", "random"]


@both_layers
async def test_a_since_ahead_of_the_room_s_stream_makes_the_page_start_over(logged_in, users, chat_rooms):
    # The page saw seq 40 of a room that was since re-created, or of a database since reset.
    await sync_to_async(message_create)(room=chat_rooms["lobby"], user=users["bob"], text="anew")
    alice = await logged_in(users["alice"])
    socket = await alice.open_tab()
    joined = await join(socket, "lobby", since=40)
    assert ([event["text"] for event in joined["history"]], joined["more"]) == (["anew"], True)
    # An empty room too: the page must drop what it shows, and not wait for a seq past 40.
    joined = await join(socket, "random", since=40)
    assert (joined["history"], joined["more"]) == ([], True)

    # On connect, as on join.
    reconnected = await alice.open_tab("?since=lobby:40,random:7")
    frames = {frame["room"]: frame for frame in [await reconnected.receive_json_from() for _ in range(2)]}
    assert (frames["lobby"]["more"], frames["random"]["more"]) == (True, True)


def test_history_since_ahead_of_the_room_s_stream_is_the_newest_with_more(users, chat_rooms):
    lobby = chat_rooms["lobby"]
    assert room_history(room=lobby, since=5) == History(frames=[], seq=0, more=True)
    message_create(room=lobby, user=users["bob"], text="anew")
    history = room_history(room=lobby, since=5)
    assert ([frame["text"] for frame in history.frames], history.seq, history.more) == (["anew"], 1, True)
    # Caught up, or without since: nothing came before these, nothing to start over from.
    assert room_history(room=lobby, since=1) == History(frames=[], seq=1, more=False)
    assert room_history(room=lobby).more is False
