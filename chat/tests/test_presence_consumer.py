"""Presence through the chat socket and this process's registry, against the in-memory
layer (presence in process memory) and the Redis layer (presence in Redis). "Another
process" is played by writing to the store under another process id, and sending
what it would send."""

import asyncio
import logging
import time

import pytest
import redis
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from rooms.presence import MEMBERS_PAGES_BURST, change_message, registry_get
from rooms.presence_store import Change, room_keys
from rooms.wire import room_group
from tests.helpers import consumer_crash, crashing_tab_open, join

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]


def presence(room: str, *, joined=(), left=(), count: int) -> dict:
    """A change, and how many are in the room after it."""
    return {"type": "presence", "room": room, "joined": list(joined), "left": list(left), "count": count}


def members_list(room: str, members: list[str], *, count: int | None = None) -> dict:
    """The first page of members (everyone, in a room under CHAT_MEMBERS_LISTED), sent after a gap."""
    return {"type": "presence", "room": room, "members": members, "count": len(members) if count is None else count}


async def first_names(room, *, limit: int = 100) -> list[str]:
    members, _ = await registry_get().store_get().snapshot(room_id=room.pk, limit=limit)
    return members.names


async def elsewhere_apply(room, *, adds=(), removes=(), ttl: float = 60, announce: bool = True):
    """What another process does: change its entries in the store, and (unless the
    message is to be lost) tell the room's group."""
    change = Change(room_id=room.pk, adds=tuple(adds), removes=tuple(removes))
    [applied] = await registry_get().store_get().apply(changes=[change], ttl=ttl)
    if announce:
        message = change_message(slug=room.slug, applied=applied)
        await get_channel_layer().group_send(room_group(room_id=room.pk), message)
    return applied


@pytest.fixture
async def members_open(logged_in, django_user_model, chat_rooms):
    """``await members_open(count, room)``: that many new users, one socket each, in the room."""
    sockets: list[WebsocketCommunicator] = []

    async def open_members(count: int, room: str) -> list[WebsocketCommunicator]:
        opened = []
        for number in range(len(sockets), len(sockets) + count):
            user = await django_user_model.objects.acreate(username=f"member-{number:03}")
            socket = await (await logged_in(user)).open_tab()
            await join(socket, room)
            opened.append(socket)
        sockets.extend(opened)
        return opened

    yield open_members
    # All at once, as many pages going away do: their exits share a few flushes.
    await asyncio.gather(*(socket.disconnect() for socket in sockets))


class StoreCalls:
    """Wraps the store this process's presence uses, counting its calls."""

    def __init__(self, monkeypatch):
        self.store = registry_get().store_get()
        self.applies: list[list[Change]] = []
        self.snapshots = 0
        self.applied = asyncio.Condition()
        apply, snapshot = self.store.apply, self.store.snapshot

        async def counted_apply(*, changes, **kwargs):
            self.applies.append(changes)
            async with self.applied:
                self.applied.notify_all()
            return await apply(changes=changes, **kwargs)

        async def counted_snapshot(**kwargs):
            self.snapshots += 1
            return await snapshot(**kwargs)

        monkeypatch.setattr(self.store, "apply", counted_apply)
        monkeypatch.setattr(self.store, "snapshot", counted_snapshot)

    async def applies_wait(self, count: int, *, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout), self.applied:
            await self.applied.wait_for(lambda: len(self.applies) >= count)


async def test_pages_get_who_joined_and_left_and_a_user_stays_until_their_last_tab_closes(logged_in, users, chat_rooms):
    alice = await (await logged_in(users["alice"])).open_tab()
    assert (await join(alice, "lobby"))["members"] == ["alice"]
    bob = await logged_in(users["bob"])
    bob_first = await bob.open_tab()
    assert (await join(bob_first, "lobby"))["members"] == ["alice", "bob"]
    assert await alice.receive_json_from() == presence("lobby", joined=["bob"], count=2)

    bob_second = await bob.open_tab()  # back in lobby from the session
    assert (await bob_second.receive_json_from())["members"] == ["alice", "bob"]
    await bob_first.disconnect()
    # Neither the second tab nor closing the first changed the members: alice hears of carol next.
    carol = await (await logged_in(users["carol"])).open_tab()
    assert (await join(carol, "lobby"))["members"] == ["alice", "bob", "carol"]
    assert await alice.receive_json_from() == presence("lobby", joined=["carol"], count=3)
    assert await bob_second.receive_json_from() == presence("lobby", joined=["carol"], count=3)

    await bob_second.disconnect()
    for socket in [alice, carol]:
        assert await socket.receive_json_from() == presence("lobby", left=["bob"], count=2)


async def test_a_page_that_missed_a_change_gets_the_whole_list_then_changes_again(logged_in, users, chat_rooms):
    lobby = chat_rooms["lobby"]
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")

    # Another process's message about carol is lost; the next one, about dave, arrives.
    await elsewhere_apply(lobby, adds=["elsewhere carol"], announce=False)
    dave = await elsewhere_apply(lobby, adds=["elsewhere dave"])
    assert await alice.receive_json_from() == members_list("lobby", ["alice", "carol", "dave"])

    # In order again: the change itself, as sent.
    await elsewhere_apply(lobby, adds=["elsewhere eve"])
    assert await alice.receive_json_from() == presence("lobby", joined=["eve"], count=4)
    # A late copy of what the page has already is dropped: the page hears of frank next.
    await get_channel_layer().group_send(room_group(room_id=lobby.pk), change_message(slug="lobby", applied=dave))
    await elsewhere_apply(lobby, removes=["elsewhere carol"], adds=["elsewhere frank"])
    assert await alice.receive_json_from() == presence("lobby", joined=["frank"], left=["carol"], count=4)


async def test_a_user_whose_process_died_is_dropped_within_ttl_and_heartbeat(logged_in, users, chat_rooms, settings):
    settings.CHAT_PRESENCE_TTL, settings.CHAT_PRESENCE_HEARTBEAT = 0.6, 0.2
    # What a process that died leaves behind: bob's entry, which nobody refreshes any more.
    loop = asyncio.get_running_loop()
    died = loop.time()
    await elsewhere_apply(chat_rooms["lobby"], adds=["dead bob"], ttl=settings.CHAT_PRESENCE_TTL, announce=False)
    alice = await (await logged_in(users["alice"])).open_tab()
    assert (await join(alice, "lobby"))["members"] == ["alice", "bob"]

    # alice's process keeps her own entry alive, and drops bob's once it expires.
    assert await alice.receive_json_from(timeout=5) == presence("lobby", left=["bob"], count=1)
    # With a second of slack for a busy machine.
    assert loop.time() - died < settings.CHAT_PRESENCE_TTL + settings.CHAT_PRESENCE_HEARTBEAT + 1
    assert await first_names(chat_rooms["lobby"]) == ["alice"]


async def test_a_store_that_lost_its_keys_is_refilled_and_pages_get_the_whole_list(joined_tabs, chat_rooms, settings):
    settings.CHAT_PRESENCE_HEARTBEAT = 0.1
    alice, bob = await joined_tabs(room="lobby", names=["alice", "bob"])
    assert await alice.receive_json_from() == presence("lobby", joined=["bob"], count=2)

    # What a Redis restart does to presence: the room's keys are gone, versions start again.
    store = registry_get().store_get()
    if settings.REDIS_URLS:
        redis.Redis.from_url(settings.REDIS_URLS[0]).delete(*room_keys(room_id=chat_rooms["lobby"].pk))
    else:
        store.rooms.clear()
    for socket in [alice, bob]:
        assert await socket.receive_json_from(timeout=5) == members_list("lobby", ["alice", "bob"])
    assert await first_names(chat_rooms["lobby"]) == ["alice", "bob"]


async def test_the_heartbeat_survives_a_failing_store_and_logs_the_outage_once(
    logged_in, users, chat_rooms, settings, monkeypatch, caplog
):
    settings.CHAT_PRESENCE_HEARTBEAT = 0.05
    caplog.set_level(logging.INFO, logger="rooms.presence")
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    calls = StoreCalls(monkeypatch)
    apply = calls.store.apply
    failures = 3

    async def failing_apply(**kwargs):
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("the store is down")
        return await apply(**kwargs)

    monkeypatch.setattr(calls.store, "apply", failing_apply)
    await calls.applies_wait(5)  # three heartbeats fail, then two work
    logged = [(record.levelname, record.getMessage()) for record in caplog.records if record.name == "rooms.presence"]
    assert logged == [
        ("WARNING", "presence: a flush failed (ConnectionError('the store is down')); retrying every heartbeat"),
        ("INFO", "presence: flushes work again"),
    ]
    # Still alive: changes go on reaching the pages.
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "lobby")
    assert await alice.receive_json_from() == presence("lobby", joined=["bob"], count=2)


async def test_an_idle_process_refreshes_all_its_rooms_in_one_apply_per_heartbeat(
    members_open, chat_rooms, settings, monkeypatch
):
    settings.CHAT_PRESENCE_HEARTBEAT = 0.1
    settings.CHAT_PRESENCE_BATCH = 0  # they join one after another: no batch to wait for
    lobby = await members_open(50, "lobby")
    await members_open(1, "random")
    calls = StoreCalls(monkeypatch)

    await calls.applies_wait(3)
    for changes in calls.applies[:3]:
        assert sorted((change.room_id, len(change.adds), change.removes) for change in changes) == [
            (chat_rooms["lobby"].pk, 50, ()),
            (chat_rooms["random"].pk, 1, ()),
        ]
    assert calls.snapshots == 0
    # Nothing changed, so the pages heard nothing (the last to join heard of nobody after).
    assert await lobby[-1].receive_nothing(timeout=0.3)


async def test_joining_and_closing_cost_one_apply_each_however_many_are_in_the_room(
    members_open, chat_rooms, settings, monkeypatch
):
    settings.CHAT_PRESENCE_HEARTBEAT = 60  # none in this test
    settings.CHAT_PRESENCE_BATCH = 0  # they join one after another: no batch to wait for
    members = await members_open(20, "lobby")
    for number, socket in enumerate(members):
        for later in range(number + 1, 20):  # each heard of those who came after
            assert await socket.receive_json_from() == presence("lobby", joined=[f"member-{later:03}"], count=later + 1)
    calls = StoreCalls(monkeypatch)

    [newcomer] = await members_open(1, "lobby")
    for socket in members:
        assert await socket.receive_json_from() == presence("lobby", joined=["member-020"], count=21)
    await newcomer.disconnect()
    for socket in members:
        assert await socket.receive_json_from() == presence("lobby", left=["member-020"], count=20)
    assert (len(calls.applies), calls.snapshots) == (2, 0)


async def test_changes_made_while_a_flush_is_in_flight_go_together_in_the_next(chat_rooms, monkeypatch):
    lobby, registry = chat_rooms["lobby"], registry_get()
    calls = StoreCalls(monkeypatch)
    apply, started, release = calls.store.apply, asyncio.Event(), asyncio.Event()

    async def held_apply(**kwargs):
        started.set()
        await release.wait()
        return await apply(**kwargs)

    monkeypatch.setattr(calls.store, "apply", held_apply)

    async def enter(username: str) -> list[str]:
        registry.count_change(room=lobby, username=username, by=1)
        return (await registry.flush_await(room_id=lobby.pk, members=True)).members.names

    first = asyncio.ensure_future(enter("alice"))
    await asyncio.wait_for(started.wait(), timeout=5)
    monkeypatch.setattr(calls.store, "apply", apply)  # the next ones go through at once
    storm = [asyncio.ensure_future(enter(f"user-{number:02}")) for number in range(10)]
    release.set()

    everyone = ["alice", *(f"user-{number:02}" for number in range(10))]
    assert await asyncio.wait_for(first, timeout=5) == ["alice"]
    for entered in storm:
        assert await asyncio.wait_for(entered, timeout=5) == everyone
    # alice's flush, then one for the ten who came while it was in flight.
    assert [len(changes[0].adds) for changes in calls.applies] == [1, 10]


async def test_the_heartbeat_stops_with_the_last_room_and_starts_with_the_next(logged_in, users, chat_rooms, settings):
    settings.CHAT_PRESENCE_HEARTBEAT = 0.05
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    heartbeat = registry_get().task  # the heartbeat's (Rounds)

    await alice.send_json_to({"command": "leave", "room": "lobby"})
    assert await alice.receive_json_from() == {"type": "left", "room": "lobby"}
    await asyncio.wait_for(heartbeat, timeout=5)
    assert (registry_get().task, registry_get().rooms, registry_get().store) == (None, {}, None)

    await join(alice, "random")
    assert not registry_get().task.done()
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "random")
    assert await alice.receive_json_from() == presence("random", joined=["bob"], count=2)


async def test_a_consumer_that_fails_to_make_its_pieces_at_connect_raises_that_error(
    logged_in, users, monkeypatch, site_origin
):
    """Its clean-up must not hide the error behind one of its own (a piece it never made)."""
    # Imported now, not at the top: the application needs Django set up.
    from config.asgi import application

    def typing_fails(**kwargs):
        raise RuntimeError("no typing for this socket")

    monkeypatch.setattr("rooms.consumers.SocketTyping", typing_fails)
    browser = await logged_in(users["alice"])
    socket = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"origin", site_origin.encode()), browser.cookie]
    )
    with pytest.raises(RuntimeError, match="no typing for this socket"):
        await socket.connect()


async def test_a_consumer_that_crashed_in_a_room_leaves_its_presence(
    logged_in, users, chat_rooms, monkeypatch, site_origin
):
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    crashing = await crashing_tab_open(browser=await logged_in(users["bob"]), origin=site_origin)
    await consumer_crash(socket=crashing, room="lobby", monkeypatch=monkeypatch)
    # bob was counted in before the crash, and out after it.
    assert await alice.receive_json_from() == presence("lobby", joined=["bob"], count=2)
    assert await alice.receive_json_from() == presence("lobby", left=["bob"], count=1)


async def test_after_a_channel_layer_outage_every_page_gets_the_whole_list_of_each_of_its_rooms(
    logged_in, users, chat_rooms
):
    lobby = chat_rooms["lobby"]
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    await join(alice, "random")
    bob = await (await logged_in(users["bob"])).open_tab()
    await join(bob, "lobby")
    assert await alice.receive_json_from() == presence("lobby", joined=["bob"], count=2)

    # While this process's pub/sub connection was away, carol came from another process: the
    # message was lost, and the room stays quiet after.
    await elsewhere_apply(lobby, adds=["elsewhere carol"], announce=False)
    # What the layer puts in every consumer's queue once Redis is back (realtime_common.layers).
    await get_channel_layer().group_send(room_group(room_id=lobby.pk), {"type": "layer.reconnected"})
    members = members_list("lobby", ["alice", "bob", "carol"])
    assert await bob.receive_json_from() == members
    assert [await alice.receive_json_from() for _ in range(2)] == [members, members_list("random", ["alice"])]
    # In order again from there: the next change comes as a change.
    await elsewhere_apply(lobby, removes=["elsewhere carol"])
    for socket in [alice, bob]:
        assert await socket.receive_json_from() == presence("lobby", left=["carol"], count=2)


async def test_a_process_whose_clock_is_off_by_more_than_the_ttl_neither_prunes_nor_flaps_members(
    chat_rooms, settings, monkeypatch
):
    settings.CHAT_PRESENCE_TTL, settings.CHAT_PRESENCE_HEARTBEAT, settings.CHAT_PRESENCE_BATCH = 6, 60, 0
    lobby, registry, wall_clock = chat_rooms["lobby"], registry_get(), time.time

    async def enter(username: str, *, skew: float):
        """A user enters through a process whose clock is ``skew`` seconds off."""
        monkeypatch.setattr(time, "time", lambda: wall_clock() + skew)
        registry.count_change(room=lobby, username=username, by=1)
        return await registry.flush_await(room_id=lobby.pk, members=True)

    entered = [
        await enter("alice", skew=0),
        await enter("bob", skew=7),  # ahead by more than the TTL: alice's entry is not expired for it
        await enter("carol", skew=-7),  # behind: its entries are not expired for the others
        await enter("dave", skew=0),
    ]
    assert [(applied.joined, applied.left) for applied in entered] == [
        (["alice"], []),
        (["bob"], []),
        (["carol"], []),
        (["dave"], []),
    ]
    assert entered[-1].members.names == ["alice", "bob", "carol", "dave"]


async def room_fill(room, *, count: int, announce: bool = False) -> list[str]:
    """``count`` users of another process in the room, in one change; their names, sorted."""
    names = [f"user-{number:03}" for number in range(count)]
    await elsewhere_apply(room, adds=[f"elsewhere {name}" for name in names], announce=announce)
    return names


async def test_a_room_over_the_cap_lists_its_first_names_and_counts_everyone(logged_in, users, chat_rooms, settings):
    settings.CHAT_MEMBERS_LISTED = 5
    others = await room_fill(chat_rooms["lobby"], count=12)
    alice = await (await logged_in(users["alice"])).open_tab()
    joined = await join(alice, "lobby")
    # "alice" sorts before "user-…": the first five of thirteen.
    assert (joined["members"], joined["count"]) == (["alice", *others[:4]], 13)
    # A room under the cap: everyone, as ever, and its count.
    assert ((joined := await join(alice, "random"))["members"], joined["count"]) == (["alice"], 1)


async def test_members_pages_walk_the_whole_room_once_in_order(logged_in, users, chat_rooms, settings):
    settings.CHAT_MEMBERS_LISTED = 4
    others = await room_fill(chat_rooms["lobby"], count=10)
    alice = await (await logged_in(users["alice"])).open_tab()
    walked = (await join(alice, "lobby"))["members"]
    pages = []
    while not pages or pages[-1]["more"]:
        await alice.send_json_to({"command": "members", "room": "lobby", "after": walked[-1]})
        pages.append(await alice.receive_json_from())
        walked += pages[-1]["members"]
    assert walked == ["alice", *others]
    assert [(page["type"], page["room"], page["after"], page["count"]) for page in pages] == [
        ("members", "lobby", "user-002", 11),
        ("members", "lobby", "user-006", 11),
    ]
    assert [len(page["members"]) for page in pages] == [4, 3]
    # Without after: from the first name.
    await alice.send_json_to({"command": "members", "room": "lobby"})
    first = await alice.receive_json_from()
    assert (first["after"], first["members"], first["more"]) == ("", ["alice", *others[:3]], True)


async def test_a_change_beyond_the_listed_names_is_sent_with_the_count(logged_in, users, chat_rooms, settings):
    settings.CHAT_MEMBERS_LISTED = 2
    lobby = chat_rooms["lobby"]
    await room_fill(lobby, count=3)
    alice = await (await logged_in(users["alice"])).open_tab()
    assert (await join(alice, "lobby"))["members"] == ["alice", "user-000"]
    # zoe sorts after every name the page lists: the change names her all the same, and the count
    # tells the page one more is here (chat.js shows it in "N more", not in its list).
    await elsewhere_apply(lobby, adds=["elsewhere zoe"])
    assert await alice.receive_json_from() == presence("lobby", joined=["zoe"], count=5)
    await elsewhere_apply(lobby, removes=["elsewhere user-002"])
    assert await alice.receive_json_from() == presence("lobby", left=["user-002"], count=4)


async def test_a_change_of_more_users_than_a_list_holds_sends_the_first_page_instead(
    logged_in, users, chat_rooms, settings
):
    settings.CHAT_MEMBERS_LISTED = 3
    lobby = chat_rooms["lobby"]
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    # Four came in one batch (a reconnect storm's): their names would make the change longer than a list.
    others = await room_fill(lobby, count=4, announce=True)
    assert await alice.receive_json_from() == members_list("lobby", ["alice", *others[:2]], count=5)
    # Then changes again, in order.
    await elsewhere_apply(lobby, removes=["elsewhere user-003"])
    assert await alice.receive_json_from() == presence("lobby", left=["user-003"], count=4)


async def test_the_whole_list_after_a_gap_or_an_outage_is_the_first_page_and_the_count(
    logged_in, users, chat_rooms, settings
):
    settings.CHAT_MEMBERS_LISTED = 3
    lobby = chat_rooms["lobby"]
    alice = await (await logged_in(users["alice"])).open_tab()
    await join(alice, "lobby")
    # A lost change, revealed by the next one.
    others = await room_fill(lobby, count=2)
    await elsewhere_apply(lobby, adds=["elsewhere zoe"])
    assert await alice.receive_json_from() == members_list("lobby", ["alice", *others], count=4)
    # The layer back after an outage: the same first page, and the count.
    await get_channel_layer().group_send(room_group(room_id=lobby.pk), {"type": "layer.reconnected"})
    assert await alice.receive_json_from() == members_list("lobby", ["alice", *others], count=4)


async def test_members_is_refused_outside_the_room_for_a_bad_after_and_past_its_rate(
    logged_in, users, chat_rooms, settings
):
    alice = await (await logged_in(users["alice"])).open_tab()
    await alice.send_json_to({"command": "members", "room": "lobby"})
    assert (await alice.receive_json_from())["code"] == "not_joined"
    await join(alice, "lobby")
    await alice.send_json_to({"command": "members", "room": "lobby", "after": ["bob"]})
    assert (await alice.receive_json_from())["code"] == "invalid_after"
    # The first MEMBERS_PAGES_BURST pages at once are answered (the refusal above spent none), the next one not.
    for _ in range(MEMBERS_PAGES_BURST + 1):
        await alice.send_json_to({"command": "members", "room": "lobby", "after": "alice"})
    answers = [await alice.receive_json_from() for _ in range(MEMBERS_PAGES_BURST + 1)]
    assert [answer["type"] for answer in answers] == ["members"] * MEMBERS_PAGES_BURST + ["error"]
    assert answers[-1]["code"] == "rate_limited"
    assert answers[0] == {
        "type": "members",
        "room": "lobby",
        "after": "alice",
        "members": [],
        "count": 1,
        "more": False,
    }
