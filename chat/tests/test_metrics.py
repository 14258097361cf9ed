"""The chat's own metrics (rooms/metrics.py), through the chat socket, on both layers;
and no room or user ever named by a label."""

import pytest
from django.db import transaction
from prometheus_client import REGISTRY, generate_latest

from rooms.services import message_create
from tests.helpers import join, say

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]


def value(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"site": "chat"}) or 0.0


async def test_members_messages_and_typing_are_counted_and_no_label_names_a_room_or_user(logged_in, users, chat_rooms):
    present = value("chat_members_present")
    stored, typed = value("chat_messages_stored_total"), value("chat_typing_notices_total")
    alice = await (await logged_in(users["alice"])).open_tab()
    second = await (await logged_in(users["alice"])).open_tab()
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(alice, "lobby")
    await join(alice, "random")  # a member of two rooms counts in each
    await join(second, "lobby")  # a second socket of a member: still one member
    await join(bob, "lobby")
    assert value("chat_members_present") - present == 3

    await alice.send_json_to({"command": "typing", "room": "lobby"})
    await say(alice, "lobby", "hello")
    while (frame := await bob.receive_json_from())["type"] != "message":
        pass
    assert (value("chat_messages_stored_total") - stored, value("chat_typing_notices_total") - typed) == (1, 1)

    text = generate_latest(REGISTRY).decode()
    for name in ("lobby", "random", "alice", "bob", frame["room"]):
        assert f'"{name}"' not in text

    for socket in (alice, second, bob):
        await socket.disconnect()
    assert value("chat_members_present") == present


class Undone(Exception):
    """Raised to roll a test's transaction back."""


def test_a_message_is_counted_once_committed_and_not_when_its_transaction_rolls_back(users, chat_rooms):
    stored = value("chat_messages_stored_total")
    with pytest.raises(Undone), transaction.atomic():
        message_create(room=chat_rooms["lobby"], user=users["alice"], text="never stored")
        raise Undone
    assert value("chat_messages_stored_total") == stored

    with transaction.atomic():
        message_create(room=chat_rooms["lobby"], user=users["alice"], text="stored")
        assert value("chat_messages_stored_total") == stored  # not before the commit
    assert value("chat_messages_stored_total") == stored + 1
