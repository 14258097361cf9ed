"""Who is typing (rooms/typing.py), through the chat socket, against the in-memory layer
and the Redis layer. "Another process" is played by sending its announcements to the
room's typing group. Expiry runs on a short CHAT_TYPING_TTL, never on sleeps: the tests
wait for frames, or for a time in which none may come."""

import asyncio

import pytest
from channels.layers import get_channel_layer

from rooms import typing as rooms_typing
from rooms.typing import heard_message, registry_get
from rooms.wire import typing_group
from tests.helpers import consumer_crash, crashing_tab_open, join, say

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]


def typing(room: str, *users: str) -> dict:
    return {"type": "typing", "room": room, "users": list(users)}


async def type_in(socket, room: str) -> None:
    await socket.send_json_to({"command": "typing", "room": room})


async def next_frame(socket, *, timeout: float = 5) -> dict:
    """The next frame but presence (others joining and leaving)."""
    while (frame := await socket.receive_json_from(timeout=timeout))["type"] == "presence":
        pass
    return frame


async def frames_within(socket, seconds: float) -> list[dict]:
    """Every frame but presence that arrives within ``seconds``: a wait for what must not come."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    frames = []
    while (left := end - loop.time()) > 0 and not await socket.receive_nothing(timeout=left):
        if (frame := await socket.receive_json_from())["type"] != "presence":
            frames.append(frame)
    return frames


@pytest.fixture
def announcements(monkeypatch) -> list[dict]:
    """Every announcement this process makes to a typing group."""
    made = []
    send = rooms_typing.group_send_logged

    async def recorded(*, group, message):
        made.append(message)
        return await send(group=group, message=message)

    monkeypatch.setattr(rooms_typing, "group_send_logged", recorded)
    return made


async def test_typing_reaches_everyone_else_in_the_room_and_none_of_the_typist_s_tabs(logged_in, users, chat_rooms):
    alice = await logged_in(users["alice"])
    alice_first = await alice.open_tab()
    await join(alice_first, "lobby")
    alice_second = await alice.open_tab()  # back in lobby from the session
    assert (await next_frame(alice_second))["type"] == "joined"
    bob = await (await logged_in(users["bob"])).open_tab()
    carol = await (await logged_in(users["carol"])).open_tab()
    elsewhere = await (await logged_in(users["sam"])).open_tab()
    await join(bob, "lobby")
    await join(carol, "lobby")
    await join(elsewhere, "random")

    await type_in(alice_first, "lobby")
    for socket in [bob, carol]:
        assert await next_frame(socket) == typing("lobby", "alice")
    await type_in(bob, "lobby")
    for socket in [alice_first, alice_second]:
        assert await next_frame(socket) == typing("lobby", "bob")
    assert await next_frame(carol) == typing("lobby", "alice", "bob")
    # Each page's list leaves its own user out; bob's did not change, and random heard nothing.
    for socket in [alice_first, alice_second, bob, carol, elsewhere]:
        assert await frames_within(socket, 0.3) == []


async def test_a_socket_that_joins_is_told_who_is_typing_after_its_joined_frame(logged_in, users, chat_rooms):
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    await type_in(alice, "lobby")
    bob = await (await logged_in(users["bob"])).open_tab()
    # Until bob's process heard alice, there is nothing to tell: join once it did.
    watcher = await (await logged_in(users["carol"])).open_tab()
    await join(watcher, "lobby")
    assert await next_frame(watcher) == typing("lobby", "alice")

    await join(bob, "lobby")
    assert await next_frame(bob) == typing("lobby", "alice")
    # Joining again answers joined again, which the page shows afresh: the list again.
    await join(bob, "lobby")
    assert await next_frame(bob) == typing("lobby", "alice")


async def test_a_user_typing_on_stays_listed_and_is_dropped_the_ttl_after_their_last_typing(
    joined_tabs, chat_rooms, settings, announcements
):
    settings.CHAT_TYPING_TTL, settings.CHAT_TYPING_RATE = 1.0, 100  # the page's pace, scaled with the TTL
    alice, bob = await joined_tabs(room="lobby", names=["alice", "bob"])

    await type_in(alice, "lobby")
    assert await next_frame(bob) == typing("lobby", "alice")
    # Typing on for longer than the TTL: listed throughout, and bob is sent nothing more.
    typed = 1
    for _ in range(8):
        assert await frames_within(bob, 0.15) == []
        await type_in(alice, "lobby")
        typed += 1
    last = asyncio.get_running_loop().time()
    assert await next_frame(bob) == typing("lobby")
    assert asyncio.get_running_loop().time() - last >= settings.CHAT_TYPING_TTL - 0.05

    # The first typing was announced, and then the renewals only as the announcement
    # was to run out: not one per typing. The end was nobody's announcement.
    assert 2 <= len(announcements) <= 4 < typed
    assert all(message["ttl"] > 0 for message in announcements)


async def test_a_user_another_process_announced_is_dropped_here_when_the_announcement_runs_out(
    logged_in, users, chat_rooms
):
    lobby = chat_rooms["lobby"]
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "lobby")

    async def elsewhere(ttl: float) -> None:
        message = heard_message(room_id=lobby.pk, username="dave", ttl=ttl)
        await get_channel_layer().group_send(typing_group(room_id=lobby.pk), message)

    await elsewhere(0.4)
    assert await next_frame(bob) == typing("lobby", "dave")
    assert await frames_within(bob, 0.2) == []
    await elsewhere(0.4)  # renewed: listed past the first 0.4 s
    assert await frames_within(bob, 0.3) == []
    started = asyncio.get_running_loop().time()
    assert await next_frame(bob) == typing("lobby")  # heard nothing more: dropped by this process itself
    assert asyncio.get_running_loop().time() - started < 1

    await elsewhere(5)
    assert await next_frame(bob) == typing("lobby", "dave")
    await elsewhere(0)  # a stop: at once
    assert await next_frame(bob, timeout=1) == typing("lobby")


async def test_a_message_drops_its_author_at_once(joined_tabs, chat_rooms):
    alice, bob = await joined_tabs(room="lobby", names=["alice", "bob"])
    await type_in(alice, "lobby")
    assert await next_frame(bob) == typing("lobby", "alice")

    await say(alice, "lobby", "Done typing")
    # Far sooner than the TTL (5 s), in either order: the message, and the list without alice.
    frames = [await next_frame(bob, timeout=1), await next_frame(bob, timeout=1)]
    assert sorted(frame["type"] for frame in frames) == ["message", "typing"]
    assert typing("lobby") in frames
    assert await frames_within(alice, 0.2) == [next(frame for frame in frames if frame["type"] == "message")]


async def test_leaving_the_room_or_closing_the_socket_typed_on_drops_the_user_at_once(logged_in, users, chat_rooms):
    alice = await logged_in(users["alice"])
    typist = await alice.open_tab()
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(typist, "lobby")
    other_tab = await alice.open_tab()
    assert (await next_frame(other_tab))["type"] == "joined"  # the second tab: in lobby from the session
    await join(bob, "lobby")

    await type_in(typist, "lobby")
    assert await next_frame(bob) == typing("lobby", "alice")
    await typist.send_json_to({"command": "leave", "room": "lobby"})
    assert await next_frame(bob, timeout=1) == typing("lobby")

    await type_in(other_tab, "lobby")
    assert await next_frame(bob) == typing("lobby", "alice")
    await typist.disconnect()  # not in lobby any more, and never typed there since: nothing changes
    assert await frames_within(bob, 0.3) == []
    await other_tab.disconnect()
    assert await next_frame(bob, timeout=1) == typing("lobby")

    # The last socket gone, this process's listener lets go of the room, and stops.
    await bob.disconnect()
    registry = registry_get()
    assert (registry.rooms, registry.listening, registry.listener) == ({}, set(), None)


async def test_typing_in_a_room_the_socket_has_not_joined_is_refused(logged_in, users, chat_rooms):
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    for room in ["random", "no-such-room"]:
        await type_in(alice, room)
        error = await next_frame(alice)
        assert (error["type"], error["code"]) == ("error", "not_joined")
    await join(alice, "random")  # still open


async def test_typing_faster_than_the_limit_is_rate_limited_and_the_socket_stays_open(joined_tabs, chat_rooms):
    alice, bob = await joined_tabs(room="lobby", names=["alice", "bob"])
    for _ in range(3):  # CHAT_TYPING_BURST
        await type_in(alice, "lobby")
    await type_in(alice, "lobby")
    error = await next_frame(alice)
    assert (error["type"], error["code"]) == ("error", "rate_limited")
    assert await next_frame(bob) == typing("lobby", "alice")
    # Still open. Bob's join reaches alice as a presence frame, from the channel layer: in no set
    # order with the answer to her own command.
    await alice.send_json_to({"command": "join", "room": "random"})
    assert (await next_frame(alice))["type"] == "joined"


async def test_a_consumer_that_crashed_while_its_user_typed_drops_them_at_once(
    logged_in, users, chat_rooms, monkeypatch, site_origin
):
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    crashing = await crashing_tab_open(browser=await logged_in(users["bob"]), origin=site_origin)
    await join(crashing, "lobby")
    await type_in(crashing, "lobby")
    assert await next_frame(alice) == typing("lobby", "bob")

    await consumer_crash(socket=crashing, room="random", monkeypatch=monkeypatch)
    assert await next_frame(alice, timeout=1) == typing("lobby")


async def test_a_message_the_listener_cannot_read_is_logged_and_typing_goes_on(
    logged_in, users, chat_rooms, caplog, monkeypatch
):
    monkeypatch.setattr(rooms_typing, "RETRY_SECONDS", 0.01)
    lobby = chat_rooms["lobby"]
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "lobby")
    group = typing_group(room_id=lobby.pk)
    # A malformed announcement (from a bug, or another version mid-deploy): no "user".
    await get_channel_layer().group_send(group, {"type": "typing.heard", "room": lobby.pk, "ttl": 5})
    await get_channel_layer().group_send(group, heard_message(room_id=lobby.pk, username="dave", ttl=5))
    assert await next_frame(bob) == typing("lobby", "dave")
    assert "typing: the listener failed on a message" in caplog.text
    assert not registry_get().listener.done()


async def test_a_room_whose_sync_failed_unexpectedly_is_synced_by_the_next_round(
    logged_in, users, chat_rooms, caplog, monkeypatch
):
    """An error that is not Redis's (a bug) in the round that puts the listener in a room's
    typing group: the room stays to be synced, and the next round does it."""
    monkeypatch.setattr(rooms_typing, "RETRY_SECONDS", 0.01)
    lobby = chat_rooms["lobby"]
    group = typing_group(room_id=lobby.pk)
    layer = get_channel_layer()
    group_add = layer.group_add
    failed = []

    async def group_add_failing_once(name, channel):
        if name == group and not failed:
            failed.append(name)
            raise RuntimeError("a bug in the layer")
        await group_add(name, channel)

    monkeypatch.setattr(layer, "group_add", group_add_failing_once)
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "lobby")
    assert failed and "typing: a round failed" in caplog.text
    await registry_get().round_await()  # the next round, the retry
    assert lobby.pk in registry_get().listening
    await get_channel_layer().group_send(group, heard_message(room_id=lobby.pk, username="dave", ttl=5))
    assert await next_frame(bob) == typing("lobby", "dave")
