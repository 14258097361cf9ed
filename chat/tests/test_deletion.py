"""What is deleted disappears everywhere: a deleted user's messages, a deleted room, a
message deleted alone or in bulk (the admin's, a shell's) leave no text in any stored
event, in any history a page is sent, and the pages open in the room are told."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from realtime_common.models import Stream, StreamEvent
from rooms.models import Message, Room
from rooms.services import message_create
from rooms.wire import room_group
from tests.helpers import join, say

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]


@sync_to_async
def messages_write(*, room, user, texts: list[str]) -> list[Message]:
    return [message_create(room=room, user=user, text=text) for text in texts]


def stored_texts() -> str:
    """Every frame stored, of every room, as one text to search."""
    return json.dumps(list(StreamEvent.objects.values_list("frame", flat=True)))


def shown(frames: list[dict]) -> list[str]:
    """The texts a page shows after applying the frames in order."""
    texts = {}
    for frame in frames:
        if frame["type"] == "message":
            texts[frame["id"]] = frame["text"]
        else:
            texts.pop(frame["id"], None)
    return list(texts.values())


@pytest.fixture
def admin_client(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root"))
    return client


async def test_deleting_a_user_takes_their_words_out_of_the_rooms_and_off_open_pages(logged_in, users, chat_rooms):
    bob = users["bob"]
    in_lobby = await messages_write(room=chat_rooms["lobby"], user=bob, texts=["bob's secret", "bob again"])
    await messages_write(room=chat_rooms["lobby"], user=users["carol"], texts=["carol stays"])
    await messages_write(room=chat_rooms["random"], user=bob, texts=["bob elsewhere"])
    alice = await (await logged_in(users["alice"])).open_tab()
    assert shown((await join(alice, "lobby"))["history"]) == ["bob's secret", "bob again", "carol stays"]

    await sync_to_async(bob.delete)()

    told = [await alice.receive_json_from() for _ in in_lobby]
    assert told == [
        {"type": "message.deleted", "room": "lobby", "seq": seq, "id": message.pk}
        for seq, message in zip([4, 5], in_lobby)
    ]
    assert "bob" not in await sync_to_async(stored_texts)()
    history = (await join(await (await logged_in(users["carol"])).open_tab(), "lobby"))["history"]
    assert shown(history) == ["carol stays"]
    assert [frame["seq"] for frame in history] == [1, 2, 3, 4, 5]  # tombstones: no gap for a page catching up


async def test_deleting_a_room_deletes_its_stream_and_its_pages_take_it_away(logged_in, users, chat_rooms):
    await messages_write(room=chat_rooms["lobby"], user=users["bob"], texts=["said in the lobby"])
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    await join(alice, "random")

    await sync_to_async(chat_rooms["lobby"].delete)()

    assert await alice.receive_json_from() == {"type": "left", "room": "lobby"}
    assert not await sync_to_async(Stream.objects.filter(name=room_group(room_id=chat_rooms["lobby"].pk)).exists)()
    assert "said in the lobby" not in await sync_to_async(stored_texts)()
    # The socket goes on in its other rooms.
    await say(alice, "random", "still here")
    assert (await alice.receive_json_from())["text"] == "still here"


async def test_a_deleted_room_leaves_the_session_so_a_new_room_of_its_slug_is_not_joined_unasked(
    logged_in, users, chat_rooms
):
    browser = await logged_in(users["alice"])
    tab = await browser.open_tab()
    await join(tab, "lobby")
    await join(tab, "random")

    await sync_to_async(chat_rooms["lobby"].delete)()
    assert await tab.receive_json_from() == {"type": "left", "room": "lobby"}

    # Another room, made later under the old slug: the browser never joined this one.
    await sync_to_async(Room.objects.create)(slug="lobby", title="Another lobby")
    new_tab = await browser.open_tab()
    assert (await new_tab.receive_json_from())["room"] == "random"
    assert await new_tab.receive_nothing()


async def test_a_bulk_delete_of_messages_in_a_shell_tells_the_room(logged_in, users, chat_rooms):
    written = await messages_write(room=chat_rooms["lobby"], user=users["bob"], texts=["one", "two", "kept"])
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")

    await sync_to_async(Message.objects.exclude(text="kept").delete)()

    told = [(await alice.receive_json_from())["id"] for _ in range(2)]
    assert told == [message.pk for message in written[:2]]
    texts = await sync_to_async(stored_texts)()
    assert '"one"' not in texts and '"two"' not in texts and '"kept"' in texts


def test_the_admin_s_bulk_delete_of_messages_scrubs_them(admin_client, users, chat_rooms):
    messages = [message_create(room=chat_rooms["lobby"], user=users["bob"], text=f"admin {n}") for n in range(3)]
    response = admin_client.post(
        "/admin/rooms/message/",
        {"action": "delete_selected", "_selected_action": [message.pk for message in messages[:2]], "post": "yes"},
    )
    assert response.status_code == 302
    texts = stored_texts()
    assert "admin 0" not in texts and "admin 1" not in texts and "admin 2" in texts
    frames = StreamEvent.objects.order_by("-seq").values_list("frame", flat=True)[:2]
    assert sorted(frame["id"] for frame in frames) == [message.pk for message in messages[:2]]


def test_the_admin_s_user_delete_scrubs_their_messages(admin_client, users, chat_rooms):
    bob = users["bob"]
    message_create(room=chat_rooms["lobby"], user=bob, text="bob's words")
    response = admin_client.post(f"/admin/auth/user/{bob.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=bob.pk).exists()
    assert "bob's words" not in stored_texts()
