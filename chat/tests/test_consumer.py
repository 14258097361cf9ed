"""The chat socket, against the in-memory and the Redis channel layer (and with it,
rate limits and presence in process memory and in Redis). Presence has its own
tests in test_presence_consumer.py, and sessions (logout, re-checks) in test_sessions.py."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction

from rooms.models import Message
from rooms.selectors import SESSION_ROOMS
from rooms.services import message_create
from tests.helpers import Browser, join, say

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

count_messages = sync_to_async(Message.objects.count)


@sync_to_async
def create_messages(room, user, count: int) -> list[Message]:
    return [message_create(room=room, user=user, text=f"message {number}") for number in range(count)]


def texts(frame: dict) -> list[str]:
    return [message["text"] for message in frame["history"]]


async def tabs_after_leaving_random(*, browser: Browser) -> tuple[WebsocketCommunicator, WebsocketCommunicator]:
    """Two tabs of one session: the first joined lobby and random, then left random; the
    second, opened after, is put back in lobby alone (the session's rooms)."""
    first_tab = await browser.open_tab()
    await join(first_tab, "lobby")
    await join(first_tab, "random")
    await first_tab.send_json_to({"command": "leave", "room": "random"})
    assert (await first_tab.receive_json_from())["type"] == "left"
    second_tab = await browser.open_tab()
    assert (await second_tab.receive_json_from())["room"] == "lobby"
    return first_tab, second_tab


async def test_the_site_s_own_origin_connects(logged_in, users, chat_rooms):
    alice = await logged_in(users["alice"])
    _, connected = await alice.connect("/ws/chat/", headers=[alice.cookie])
    assert connected


async def test_any_other_origin_is_refused(logged_in, users, chat_rooms, hostile_origin):
    alice = await logged_in(users["alice"])
    _, connected = await alice.connect("/ws/chat/", origin=hostile_origin, headers=[alice.cookie])
    assert not connected


async def test_join_sends_title_history_and_members(logged_in, users, chat_rooms):
    await create_messages(chat_rooms["random"], users["bob"], 55)
    socket = await (await logged_in(users["alice"])).open_tab()

    joined = await join(socket, "random")
    assert (joined["title"], joined["members"]) == ("Random <talk>", ["alice"])
    assert texts(joined) == [f"message {number}" for number in range(5, 55)]
    assert joined["more"] is True  # messages 0 to 4 were left out
    first = joined["history"][0]
    assert first == {
        "type": "message",
        "room": "random",
        "seq": 6,
        "id": first["id"],
        "user": "bob",
        "text": "message 5",
        "created": first["created"],
        "client_id": None,  # sent without one
    }


async def test_join_with_since_sends_every_message_after_it_up_to_the_history_length(logged_in, users, chat_rooms):
    await create_messages(chat_rooms["lobby"], users["bob"], 60)  # seq 1 to 60
    socket = await (await logged_in(users["alice"])).open_tab()

    joined = await join(socket, "lobby", since=53)
    assert (texts(joined), joined["more"]) == ([f"message {n}" for n in range(53, 60)], False)
    joined = await join(socket, "lobby", since=60)
    assert (joined["history"], joined["more"]) == ([], False)
    # More than one join sends, or ahead of the room: the newest, and "more" says the page must start again.
    for since in [3, 61]:
        joined = await join(socket, "lobby", since=since)
        assert (texts(joined), joined["more"]) == ([f"message {n}" for n in range(10, 60)], True)


async def test_a_message_reaches_every_member_of_the_room_once_committed(logged_in, users, chat_rooms):
    alice = await (await logged_in(users["alice"])).open_tab()
    bob = await (await logged_in(users["bob"])).open_tab()
    carol = await (await logged_in(users["carol"])).open_tab()
    await join(alice, "lobby")
    await join(bob, "lobby")
    assert (await alice.receive_json_from())["joined"] == ["bob"]
    await join(carol, "random")

    await say(alice, "lobby", "  Hello <b>bob</b>  ")
    frames = [await socket.receive_json_from() for socket in [alice, bob]]
    stored = await sync_to_async(Message.objects.get)()
    for frame in frames:
        assert frame == {
            "type": "message",
            "room": "lobby",
            "seq": 1,
            "id": stored.pk,
            "user": "alice",
            "text": "Hello <b>bob</b>",
            "created": stored.created.isoformat(),
            "client_id": None,  # sent without one
        }
    # Had alice's message reached carol, it would arrive before her own.
    await say(carol, "random", "Anyone?")
    assert (await carol.receive_json_from())["text"] == "Anyone?"


async def test_a_rolled_back_message_is_not_broadcast(logged_in, users, chat_rooms):
    socket = await (await logged_in(users["alice"])).open_tab()
    await join(socket, "lobby")

    @sync_to_async
    def create_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            message_create(room=chat_rooms["lobby"], user=users["bob"], text="Never happened")
            raise RuntimeError("rolled back")

    await create_then_fail()
    await say(socket, "lobby", "Committed")
    assert (await socket.receive_json_from())["text"] == "Committed"
    assert await count_messages() == 1


@pytest.mark.parametrize("text", ["", "   \n ", pytest.param("x" * 2001, id="2001-characters"), 42, None, ["hi"]])
async def test_invalid_text_is_refused_and_nothing_stored(logged_in, users, chat_rooms, text):
    socket = await (await logged_in(users["alice"])).open_tab()
    await join(socket, "lobby")
    await socket.send_json_to({"command": "send", "room": "lobby", "text": text})
    assert (await socket.receive_json_from())["code"] == "invalid_text"
    assert await count_messages() == 0


async def test_text_of_2000_characters_after_trimming_is_stored(logged_in, users, chat_rooms):
    socket = await (await logged_in(users["alice"])).open_tab()
    await join(socket, "lobby")
    await say(socket, "lobby", "  " + "x" * 2000 + "\n")
    assert (await socket.receive_json_from())["text"] == "x" * 2000


async def test_a_flood_is_rate_limited_per_user_across_tabs_and_nothing_stored(logged_in, users, chat_rooms, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 3
    settings.CHAT_RATE_LIMIT_SECONDS = 10**6  # one window for the whole test
    alice = await logged_in(users["alice"])
    first_tab, second_tab = await alice.open_tab(), await alice.open_tab()
    await join(first_tab, "lobby")
    await join(second_tab, "random")

    for number in range(2):
        await say(first_tab, "lobby", f"lobby {number}")
        assert (await first_tab.receive_json_from())["text"] == f"lobby {number}"
    await say(second_tab, "random", "random 0")
    assert (await second_tab.receive_json_from())["text"] == "random 0"
    for tab, room in [(second_tab, "random"), (first_tab, "lobby")]:
        await say(tab, room, "one too many")
        assert (await tab.receive_json_from())["code"] == "rate_limited"
    assert await count_messages() == 3

    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "lobby")
    await say(bob, "lobby", "bob is not limited by alice")
    assert (await bob.receive_json_from())["text"] == "bob is not limited by alice"


async def test_joins_and_leaves_are_rate_limited_per_user_across_tabs_and_change_nothing(
    logged_in, users, chat_rooms, settings
):
    settings.CHAT_JOIN_LIMIT = 4
    settings.CHAT_JOIN_SECONDS = 10**6  # one window for the whole test
    alice = await logged_in(users["alice"])
    # Three joins and leaves counted: second_tab was put back in lobby without one.
    first_tab, second_tab = await tabs_after_leaving_random(browser=alice)
    await join(second_tab, "random")

    refused = [(second_tab, "join", "staff-room"), (first_tab, "join", "random"), (second_tab, "leave", "lobby")]
    for tab, command, room in refused:
        await tab.send_json_to({"command": command, "room": room})
        error = await tab.receive_json_from()
        assert (error["type"], error["code"]) == ("error", "rate_limited")
    assert await sync_to_async(lambda: SessionStore(alice.session_key)[SESSION_ROOMS])() == ["lobby", "random"]
    # Still open, and still in the rooms it was in: the refused leave left second_tab in lobby.
    await say(first_tab, "lobby", "still in lobby")
    for tab in [first_tab, second_tab]:
        assert (await tab.receive_json_from())["text"] == "still in lobby"

    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "lobby")  # alice's joins are not bob's


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ("{}", "unknown_command"),
        ('{"command": "shout", "room": "lobby"}', "unknown_command"),
        ('{"command": ["join"], "room": "lobby"}', "unknown_command"),
        ('{"command": "join"}', "invalid_room"),
        ('{"command": "join", "room": 42}', "invalid_room"),
        ('{"command": "join", "room": "no spaces"}', "invalid_room"),
        ('{"command": "join", "room": "caf\\u00e9"}', "invalid_room"),
        ('{"command": "join", "room": "' + "x" * 51 + '"}', "invalid_room"),
        ('{"command": "join", "room": "no-such-room"}', "room_not_found"),
        ('{"command": "join", "room": "lobby", "since": "3"}', "invalid_since"),
        ('{"command": "join", "room": "lobby", "since": -1}', "invalid_since"),
        ('{"command": "join", "room": "lobby", "since": true}', "invalid_since"),
        ('{"command": "join", "room": "lobby", "since": 1.5}', "invalid_since"),
        ('{"command": "send", "room": "lobby", "text": "not joined"}', "not_joined"),
        ('{"command": "send", "room": "no-such-room", "text": "hi"}', "not_joined"),
        ('{"command": "leave", "room": "lobby"}', "not_joined"),
    ],
)
async def test_bad_input_gets_an_error_and_the_socket_stays_open(logged_in, users, chat_rooms, frame, code):
    alice = await logged_in(users["alice"])
    socket = await alice.open_tab()
    await socket.send_to(text_data=frame)
    error = await socket.receive_json_from()
    assert error["type"] == "error" and error["code"] == code and error["detail"]

    assert await count_messages() == 0
    # Still open, and the bad command joined nothing: a new tab is put in no room.
    await join(socket, "random")
    other_tab = await alice.open_tab()
    assert (await other_tab.receive_json_from())["room"] == "random"


async def test_binary_frames_get_an_error_and_the_socket_stays_open(logged_in, users, chat_rooms):
    socket = await (await logged_in(users["alice"])).open_tab()
    await socket.send_to(bytes_data=b"\x00\xff")
    assert (await socket.receive_json_from())["code"] == "binary_frame"
    await join(socket, "lobby")


async def test_staff_only_room_refuses_others(logged_in, users, chat_rooms):
    alice = await (await logged_in(users["alice"])).open_tab()
    await alice.send_json_to({"command": "join", "room": "staff-room"})
    assert (await alice.receive_json_from())["code"] == "forbidden"
    await alice.send_json_to({"command": "send", "room": "staff-room", "text": "let me in"})
    assert (await alice.receive_json_from())["code"] == "not_joined"

    sam = await (await logged_in(users["sam"])).open_tab()
    assert (await join(sam, "staff-room"))["members"] == ["sam"]


async def test_leave_stops_the_room_s_messages(logged_in, users, chat_rooms):
    alice = await (await logged_in(users["alice"])).open_tab()
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(alice, "lobby")
    await join(alice, "random")
    await join(bob, "lobby")
    assert (await alice.receive_json_from())["joined"] == ["bob"]

    await alice.send_json_to({"command": "leave", "room": "lobby"})
    assert await alice.receive_json_from() == {"type": "left", "room": "lobby"}
    assert await bob.receive_json_from() == {
        "type": "presence",
        "room": "lobby",
        "joined": [],
        "left": ["alice"],
        "count": 1,
    }
    await say(bob, "lobby", "alice is gone")
    await say(alice, "random", "still here")
    assert (await alice.receive_json_from())["text"] == "still here"


async def test_a_new_socket_of_the_session_is_put_back_in_its_rooms(logged_in, users, chat_rooms):
    alice = await logged_in(users["alice"])
    first_tab = await alice.open_tab()
    await join(first_tab, "random")
    await join(first_tab, "lobby")
    await say(first_tab, "lobby", "before the reload")
    said = await first_tab.receive_json_from()

    second_tab = await alice.open_tab()
    restored = [await second_tab.receive_json_from() for _ in range(2)]
    assert [(frame["type"], frame["room"], frame["members"]) for frame in restored] == [
        ("joined", "random", ["alice"]),
        ("joined", "lobby", ["alice"]),
    ]
    assert restored[1]["history"] == [said]

    # With since, the history of that room is only what came after it.
    await say(first_tab, "lobby", "after")
    third_tab = await alice.open_tab(f"?since=lobby:{said['seq']},nonsense")
    restored = {frame["room"]: frame for frame in [await third_tab.receive_json_from() for _ in range(2)]}
    assert texts(restored["lobby"]) == ["after"]
    assert texts(restored["random"]) == []


async def test_a_left_room_is_not_restored_and_other_sessions_start_empty(logged_in, users, chat_rooms):
    alice = await logged_in(users["alice"])
    first_tab, second_tab = await tabs_after_leaving_random(browser=alice)
    # alice on another device: a session of its own, in no room yet.
    elsewhere = await (await logged_in(users["alice"])).open_tab()
    await say(first_tab, "lobby", "next")
    assert (await second_tab.receive_json_from())["text"] == "next"
    await join(elsewhere, "random")


async def test_a_lost_message_is_filled_in_from_the_rooms_stream(logged_in, users, chat_rooms, monkeypatch):
    from realtime_common import streams

    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    monkeypatch.setattr(streams, "group_send_on_commit", lambda **kwargs: None)
    await create_messages(chat_rooms["lobby"], users["bob"], 1)  # never broadcast
    monkeypatch.undo()
    await create_messages(chat_rooms["lobby"], users["bob"], 1)
    frames = [await alice.receive_json_from() for _ in range(2)]
    assert [(frame["seq"], frame["text"]) for frame in frames] == [(1, "message 0"), (2, "message 0")]


async def test_a_socket_that_missed_more_than_the_room_keeps_gets_the_room_again(
    logged_in, users, chat_rooms, monkeypatch
):
    from realtime_common import streams

    monkeypatch.setattr(Message, "live_retention", 3)
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    real_send = streams.group_send_on_commit
    monkeypatch.setattr(streams, "group_send_on_commit", lambda **kwargs: None)
    await create_messages(chat_rooms["lobby"], users["bob"], 5)  # all lost, and 1 and 2 pruned
    monkeypatch.setattr(streams, "group_send_on_commit", real_send)
    await create_messages(chat_rooms["lobby"], users["bob"], 1)
    again = await alice.receive_json_from()
    assert (again["type"], again["room"], [frame["seq"] for frame in again["history"]], again["more"]) == (
        "joined",
        "lobby",
        [4, 5, 6],
        True,  # the page must replace what it shows: 1 to 3 are gone
    )


async def test_deleting_a_message_is_an_event_of_its_room(logged_in, users, chat_rooms):
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    (message,) = await create_messages(chat_rooms["lobby"], users["bob"], 1)
    message_id = message.pk
    assert (await alice.receive_json_from())["seq"] == 1
    await sync_to_async(message.delete)()
    assert await alice.receive_json_from() == {"type": "message.deleted", "room": "lobby", "seq": 2, "id": message_id}
