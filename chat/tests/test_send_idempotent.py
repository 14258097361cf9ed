"""A send's client_id (chat/README.md, the chat protocol): the message frame carries it back, a
resend of it stores nothing new and answers the sending socket alone, and every
refusal of a send names it. Against the in-memory and the Redis channel layer."""

from functools import partial

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.db import OperationalError
from django.test import Client

from rooms import consumers
from rooms.models import Message
from rooms.services import ClientIdTaken, MessageRateLimited, SessionEnded, message_send
from tests.helpers import join

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

count_messages = sync_to_async(Message.objects.count)


async def send(socket, room: str, text: str, client_id: str) -> None:
    await socket.send_json_to({"command": "send", "room": room, "text": text, "client_id": client_id})


async def in_lobby(joined_tabs) -> tuple:
    """alice's tab and bob's, both in lobby, alice told that bob came."""
    alice, bob = await joined_tabs(room="lobby", names=["alice", "bob"])
    assert (await alice.receive_json_from())["joined"] == ["bob"]
    return alice, bob


async def test_the_message_frame_carries_the_sender_s_client_id_to_every_member(joined_tabs, chat_rooms):
    alice, bob = await in_lobby(joined_tabs)
    await send(alice, "lobby", "Hello", "m-1")
    for socket in [alice, bob]:
        frame = await socket.receive_json_from()
        assert (frame["type"], frame["text"], frame["client_id"]) == ("message", "Hello", "m-1")


async def test_a_resent_client_id_stores_nothing_and_answers_the_sending_socket_alone(logged_in, users, chat_rooms):
    browser = await logged_in(users["alice"])
    first_tab = await browser.open_tab()
    await join(first_tab, "lobby")
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "lobby")
    assert (await first_tab.receive_json_from())["joined"] == ["bob"]
    await send(first_tab, "lobby", "Hello", "m-1")
    stored = await first_tab.receive_json_from()
    assert (await bob.receive_json_from()) == stored

    # The same page after a reconnect: a new socket of the session, back in lobby with the
    # message in its history, resends it (it cannot know whether the first send got there).
    second_tab = await browser.open_tab()
    assert (await second_tab.receive_json_from())["history"] == [stored]
    await send(second_tab, "lobby", "Hello", "m-1")
    assert await second_tab.receive_json_from() == stored
    await send(first_tab, "lobby", "Hello", "m-1")  # on the socket that sent it first, too
    assert await first_tab.receive_json_from() == stored
    assert await count_messages() == 1

    # Had the resends reached anyone else, they would arrive before this.
    await send(first_tab, "lobby", "Next", "m-2")
    for socket in [first_tab, second_tab, bob]:
        assert (await socket.receive_json_from())["client_id"] == "m-2"


async def test_a_resend_still_on_its_way_to_the_socket_comes_in_seq_order(logged_in, users, chat_rooms, monkeypatch):
    from realtime_common import streams

    alice_browser, bob_browser = await logged_in(users["alice"]), await logged_in(users["bob"])
    alice = await alice_browser.open_tab()
    await join(alice, "lobby")
    # Neither broadcast reaches alice's socket yet: as if both were still in the room's group.
    monkeypatch.setattr(streams, "group_send_on_commit", lambda **kwargs: None)
    store = sync_to_async(message_send)
    for browser, user, text, client_id in [
        (bob_browser, "bob", "Before", "b-1"),
        (alice_browser, "alice", "Mine", "a-1"),
    ]:
        await store(
            session_key=browser.session_key, room=chat_rooms["lobby"], user=users[user], text=text, client_id=client_id
        )
    monkeypatch.undo()

    await send(alice, "lobby", "Mine", "a-1")
    frames = [await alice.receive_json_from() for _ in range(2)]
    assert [(frame["seq"], frame["text"]) for frame in frames] == [(1, "Before"), (2, "Mine")]
    assert await count_messages() == 2


async def test_a_resend_is_answered_even_over_the_rate_limit(logged_in, users, chat_rooms, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 1
    settings.CHAT_RATE_LIMIT_SECONDS = 10**6  # one window for the whole test
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    await send(alice, "lobby", "Hello", "m-1")
    stored = await alice.receive_json_from()

    await send(alice, "lobby", "Hello", "m-1")
    assert await alice.receive_json_from() == stored
    await send(alice, "lobby", "One too many", "m-2")
    error = await alice.receive_json_from()
    assert (error["code"], error["client_id"]) == ("rate_limited", "m-2")
    assert await count_messages() == 1


async def test_another_user_s_same_client_id_is_another_message(joined_tabs, chat_rooms):
    alice, bob = await in_lobby(joined_tabs)
    for sender, text in [(alice, "From alice"), (bob, "From bob")]:
        await send(sender, "lobby", text, "same-id")
        for socket in [alice, bob]:
            frame = await socket.receive_json_from()
            assert (frame["text"], frame["client_id"]) == (text, "same-id")
    assert await count_messages() == 2


@pytest.mark.parametrize(
    ("room", "text", "client_id", "code"),
    [
        ("staff-room", "Hi", "m-2", "not_joined"),
        ("lobby", "   ", "m-2", "invalid_text"),
        # A client_id names one message: another text, or the same in another room, is a page's bug.
        ("lobby", "Not what m-1 said", "m-1", "invalid_client_id"),
        ("random", "Hello", "m-1", "invalid_client_id"),
    ],
)
async def test_a_refused_send_names_its_client_id(logged_in, users, chat_rooms, room, text, client_id, code):
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    await join(alice, "random")
    await send(alice, "lobby", "Hello", "m-1")
    assert (await alice.receive_json_from())["client_id"] == "m-1"

    await send(alice, room, text, client_id)
    error = await alice.receive_json_from()
    assert (error["type"], error["code"], error["client_id"]) == ("error", code, client_id)
    assert await count_messages() == 1


async def test_a_send_the_database_refused_names_its_client_id(logged_in, users, chat_rooms, monkeypatch):
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(consumers, "message_send", locked)
    await send(alice, "lobby", "Hello", "m-1")
    error = await alice.receive_json_from()
    assert (error["code"], error["client_id"]) == ("busy", "m-1")
    assert await count_messages() == 0


@pytest.fixture
def alice_session(users, settings) -> str:
    """The key of a session of alice's (a browser logged in)."""
    client = Client()
    client.force_login(users["alice"])
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_sends_of_one_client_id_at_once_store_one_message(concurrent_writers, users, chat_rooms, alice_session):
    sends = [
        partial(
            message_send,
            session_key=alice_session,
            room=chat_rooms["lobby"],
            user=users["alice"],
            text="Hello",
            client_id="m-1",
        )
    ] * 4
    results = concurrent_writers(*sends)
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({message.pk for message, _ in results}) == 1
    assert Message.objects.count() == 1


def test_message_send_stores_an_id_once_uncounted_after_and_refuses_another_message_under_it(
    users, chat_rooms, settings, alice_session
):
    settings.CHAT_RATE_LIMIT_MESSAGES = 1
    settings.CHAT_RATE_LIMIT_SECONDS = 10**6  # one window for the whole test
    send = partial(message_send, session_key=alice_session, user=users["alice"])
    stored, created = send(room=chat_rooms["lobby"], text="Hello", client_id="m-1")
    assert created
    assert send(room=chat_rooms["lobby"], text="Hello", client_id="m-1") == (stored, False)  # a resend, not counted
    for room, text in [("lobby", "Not what m-1 said"), ("random", "Hello")]:
        with pytest.raises(ClientIdTaken):
            send(room=chat_rooms[room], text=text, client_id="m-1")
    with pytest.raises(MessageRateLimited):
        send(room=chat_rooms["lobby"], text="Two", client_id="m-2")
    assert Message.objects.count() == 1


def test_a_resend_is_not_counted_against_the_rate(users, chat_rooms, settings, alice_session):
    settings.CHAT_RATE_LIMIT_MESSAGES = 2
    settings.CHAT_RATE_LIMIT_SECONDS = 10**6  # one window for the whole test
    send = partial(message_send, session_key=alice_session, room=chat_rooms["lobby"], user=users["alice"])
    stored, _ = send(text="Hello", client_id="m-1")
    # Its INSERT meets the first one's row (the unique constraint), which answers it.
    assert send(text="Hello", client_id="m-1") == (stored, False)

    # The user's second message, within the limit of two: the resend was no message.
    _, created = send(text="Two", client_id="m-2")
    assert created
    with pytest.raises(MessageRateLimited):
        send(text="Three", client_id="m-3")


def test_a_send_on_a_session_that_ended_stores_nothing(users, chat_rooms, alice_session):
    Session.objects.filter(session_key=alice_session).delete()
    with pytest.raises(SessionEnded):
        message_send(
            session_key=alice_session, room=chat_rooms["lobby"], user=users["alice"], text="Hello", client_id="m-1"
        )
    assert Message.objects.count() == 0


def test_a_message_asks_for_trust_just_before_its_write(users, chat_rooms, alice_session):
    """The verdict is asked in the ORM's thread as the write begins, not when the socket queued it:
    a session that ended meanwhile, and that nothing vouches for any more, stores nothing."""
    send = partial(message_send, session_key=alice_session, room=chat_rooms["lobby"], user=users["alice"])
    asked = []
    send(text="trusted", client_id="m-1", session_trusted=lambda: asked.append(1) or True)
    Session.objects.filter(session_key=alice_session).delete()
    # Still vouched for: the window trust leaves (the next re-check closes the socket).
    _, created = send(text="in the window", client_id="m-2", session_trusted=lambda: True)
    assert created and asked == [1]
    with pytest.raises(SessionEnded):
        send(text="after", client_id="m-3", session_trusted=lambda: False)
    assert list(Message.objects.order_by("pk").values_list("text", flat=True)) == ["trusted", "in the window"]
