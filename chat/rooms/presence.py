"""Who is in a room, across every process and tab, at a cost that does not grow
with the number of sockets.

A consumer calls its ``SocketPresence`` (at the end of this file), which counts
the socket in this process's ``Registry``, which flushes the counts to the store
(``presence_store.py``) and announces the changes to the room's group.

**Counted per process.** Each process (each running event loop: daphne has one,
every test its own) keeps a registry: how many of its sockets each user has in
each room. Only a user's first socket in a room, and their last one leaving,
changes anything outside the process: a second tab, or one of two closing, is a
local count and nothing more.

**Stored per room.** The store (``presence_store.py``: Redis with REDIS_URL or
REDIS_SENTINELS, else process memory) has one entry per process and user in the room, expiring
CHAT_PRESENCE_TTL seconds after it was last refreshed. One ``apply`` changes
the entries, prunes the expired ones (a dead process's) and answers who joined
and who left, and the room's version, raised by every change of its users.

**Flushed in batches.** Count changes go to the store in flushes: at most one in
flight per room and process, at most one per CHAT_PRESENCE_BATCH seconds, so
that a reconnect storm costs a few flushes, not one per socket. A socket that
enters awaits the flush carrying its change, which also returns the members
(the store's round trip is shared by every socket in the batch). One heartbeat
task per process refreshes its entries every CHAT_PRESENCE_HEARTBEAT seconds,
every room in one pipeline; its prunes are how a dead process's users leave.

**Announced as changes.** A flush that changed the users sends one group
message to the room: the version and the page's frame, encoded once. Each
socket passes on the next version and drops older ones; after a gap (a lost
message, or a store that lost its keys and started a new epoch) it reads and
sends the full member list instead; and so does every socket once the channel
layer is back after an outage (``layer_reconnected``), as the changes sent
meanwhile are lost without a later one to reveal the gap.

**Listed a page at a time.** A list of members (in ``joined``, the whole-list
``presence``, the ``members`` answer) holds at most CHAT_MEMBERS_LISTED names, the
first in sort order, beside the room's count: a room of thousands costs each page
a few KB, not 160 bytes a member. A change of more users than that (a reconnect
storm's batch) is announced without its names, and each socket sends its page the
first page instead, as after a gap: its frame is bounded too. A page asks for the
rest with ``members`` (``SocketPresence.page_send``), a page at a time.
"""

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.layers import get_channel_layer
from django.conf import settings

from realtime_common.consumers import ClientError, frame_encode
from realtime_common.layers import REDIS_DOWN
from realtime_common.loops import Rounds, loop_local
from realtime_common.metrics import site_inc
from realtime_common.outages import OutageLog
from realtime_common.redis_servers import redis_hosts
from realtime_common.throttle import TokenBucket

from .metrics import MEMBERS_PRESENT
from .models import Room
from .presence_store import Applied, Change, Members, MemoryStore, RedisStore, Version
from .wire import members_frame, presence_change_frame, presence_members_frame, room_group

logger = logging.getLogger(__name__)


# The store of a site without Redis: this process's, for its life.
MEMORY = MemoryStore()
# Each socket may ask for this many pages of members a second on average, in bursts of
# MEMBERS_PAGES_BURST: a person paging through a long list goes slower (and each page
# costs the store O(log n + CHAT_MEMBERS_LISTED), a script that walks them all no more).
MEMBERS_PAGES_RATE, MEMBERS_PAGES_BURST = 2.0, 10


def store_new() -> RedisStore | MemoryStore:
    # The first Redis of REDIS_URL, or the primary Sentinel names: wherever the cache is.
    hosts = redis_hosts(urls=settings.REDIS_URLS, sentinel=settings.REDIS_SENTINEL)
    return RedisStore(host=hosts[0]) if hosts else MEMORY


@dataclass
class RoomState:
    """A room as this process sees it."""

    slug: str
    counts: dict[str, int] = field(default_factory=dict)  # username -> this process's sockets
    dirty: set[str] = field(default_factory=set)  # users whose entry the next flush adds or removes
    refresh: bool = False  # the next flush refreshes every entry: the heartbeat asked while one was on
    flushing: bool = False  # a flush is waiting for its turn or in flight
    next_flush: asyncio.Future | None = None  # awaited by sockets that wait for the next flush
    members_wanted: bool = False  # one of them needs the members
    last_flush: float = -math.inf  # when the latest flush began (event loop time)


class Registry(Rounds):
    """This process's presence, in memory, while it has sockets in any room: how many
    of them each user has in each room, the flushes of their changes, and the heartbeat
    (``Rounds``) that refreshes its entries in the store while it counts anyone."""

    def __init__(self):
        self.process = uuid.uuid4().hex
        self.rooms: dict[int, RoomState] = {}
        super().__init__(
            name="presence",
            members=self.rooms,
            period=lambda: settings.CHAT_PRESENCE_HEARTBEAT,
            round=self.heartbeat_round,
            ended=self.store_close,
        )
        self.store: RedisStore | MemoryStore | None = None
        self.flushes: set[asyncio.Task] = set()  # the event loop keeps only weak references to tasks
        self.reads: dict[int, asyncio.Task] = {}  # member reads in flight, by room, shared by whoever needs one
        self.outages = OutageLog(
            logger=logger,
            failing="presence: a flush failed (%s); retrying every heartbeat",
            working="presence: flushes work again",
        )

    def store_get(self) -> RedisStore | MemoryStore:
        if self.store is None:
            self.store = store_new()
        return self.store

    def count_change(self, *, room: Room, username: str, by: int) -> bool:
        """Count a socket of ``username`` in or out of the room; True when the store must hear of it."""
        state = self.rooms.get(room.pk) or self.rooms.setdefault(room.pk, RoomState(slug=room.slug))
        before = state.counts.get(username, 0)
        after = before + by
        if after:
            state.counts[username] = after
        else:
            del state.counts[username]
        self.rounds_start()  # the heartbeat
        if bool(before) == bool(after):
            return False
        site_inc(MEMBERS_PRESENT, 1 if after else -1)
        state.dirty.add(username)
        return True

    async def flush_await(self, *, room_id: int, members: bool) -> Applied:
        """Wait for the next flush of the room, which carries every change counted so far."""
        state = self.rooms[room_id]
        if state.next_flush is None:
            state.next_flush = asyncio.get_running_loop().create_future()
        state.members_wanted |= members
        future = state.next_flush
        self.flush_schedule(room_id=room_id)
        # Shielded: a socket that goes away while waiting must not cancel the others' wait.
        return await asyncio.shield(future)

    def flush_schedule(self, *, room_id: int) -> None:
        state = self.rooms[room_id]
        if not state.flushing:
            state.flushing = True
            task = asyncio.create_task(self.room_flush(room_id=room_id))
            self.flushes.add(task)
            task.add_done_callback(self.flushes.discard)

    async def room_flush(self, *, room_id: int) -> None:
        # The first flush goes at once; one that follows within CHAT_PRESENCE_BATCH
        # waits, and meanwhile every other change of the room joins it.
        delay = self.rooms[room_id].last_flush + settings.CHAT_PRESENCE_BATCH - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        await self.rooms_flush(room_ids=[room_id])

    async def rooms_flush(self, *, room_ids: list[int]) -> None:
        """Apply the pending changes of these rooms (marked as flushing) in one round trip, and announce them."""
        changes, waiting = [], []
        for room_id in room_ids:
            state = self.rooms[room_id]
            users = state.counts.keys() if state.refresh else state.dirty & state.counts.keys()
            changes.append(
                Change(
                    room_id=room_id,
                    adds=tuple(self.entry(username=user) for user in users),
                    removes=tuple(self.entry(username=user) for user in state.dirty - state.counts.keys()),
                    members=settings.CHAT_MEMBERS_LISTED if state.members_wanted else 0,
                )
            )
            waiting.append(state.next_flush)
            state.dirty, state.refresh, state.next_flush, state.members_wanted = set(), False, None, False
            state.last_flush = asyncio.get_running_loop().time()
        try:
            applied = await self.store_get().apply(changes=changes, ttl=settings.CHAT_PRESENCE_TTL)
            for future, result in zip(waiting, applied, strict=True):
                if future is not None:
                    future.set_result(result)
            for change, result in zip(changes, applied, strict=True):
                if result.joined or result.left:
                    await self.change_announce(room_id=change.room_id, applied=result)
            self.outages.worked()
        except Exception as error:  # noqa: BLE001 - whatever failed, the next heartbeat tries again
            self.outages.failed(repr(error))
            for future in waiting:
                if future is not None and not future.done():
                    future.set_exception(error)
        finally:
            for room_id in room_ids:
                self.room_settle(room_id=room_id)

    def room_settle(self, *, room_id: int) -> None:
        state = self.rooms[room_id]
        state.flushing = False
        if state.dirty or state.next_flush is not None:
            self.flush_schedule(room_id=room_id)
        elif not state.counts:
            del self.rooms[room_id]

    async def change_announce(self, *, room_id: int, applied: Applied) -> None:
        message = change_message(slug=self.rooms[room_id].slug, applied=applied)
        await get_channel_layer().group_send(room_group(room_id=room_id), message)

    async def heartbeat_round(self) -> None:
        """Refresh this process's entries, every room in one round trip; the store prunes a dead process's."""
        idle = []
        for room_id, state in self.rooms.items():
            state.refresh = True  # a room with a flush on refreshes with its next one
            if not state.flushing:
                state.flushing = True
                idle.append(room_id)
        if idle:
            await self.rooms_flush(room_ids=idle)

    async def store_close(self) -> None:
        # Synchronously as the heartbeat ends, so that a room entered from now on gets a store of its own.
        store, self.store = self.store, None
        if store is not None:
            await store.close()

    def entry(self, *, username: str) -> str:
        return f"{self.process} {username}"

    async def members_read(self, *, room_id: int, at_least: Version) -> tuple[Members, Version]:
        """The room's first page of members, at ``at_least`` or later (or in another epoch)."""
        members, version = await self.snapshot_shared(room_id=room_id)
        if version.epoch == at_least.epoch and version.number < at_least.number:
            # That read began before this version was made. The next one begins after.
            members, version = await self.snapshot_shared(room_id=room_id)
        return members, version

    async def snapshot_shared(self, *, room_id: int) -> tuple[Members, Version]:
        """One read of the room's first page of members for everyone who asks while it is under way."""
        read = self.reads.get(room_id)
        if read is None:
            snapshot = self.store_get().snapshot(room_id=room_id, limit=settings.CHAT_MEMBERS_LISTED)
            read = self.reads[room_id] = asyncio.ensure_future(snapshot)
            read.add_done_callback(lambda _: self.reads.pop(room_id, None))
        return await asyncio.shield(read)


def change_message(*, slug: str, applied: Applied) -> dict:
    """The group message of a change: its version, and the page's frame encoded once for every socket;
    no frame (``text`` None) for a change of more users than a list holds: the sockets send the first
    page of members instead (``SocketPresence.changed``), which is bounded, as the change is not."""
    frame = presence_change_frame(slug=slug, joined=applied.joined, left=applied.left, count=applied.count)
    listed = len(applied.joined) + len(applied.left) <= settings.CHAT_MEMBERS_LISTED
    return {
        "type": "presence.changed",
        "room": slug,
        "epoch": applied.version.epoch,
        "version": applied.version.number,
        "text": frame_encode(frame=frame) if listed else None,
    }


registry_get = loop_local(Registry)


class SocketPresence:
    """One socket's part in who is in its rooms (the consumer's ``presence``).

    Keeps, in memory, for as long as the socket is in each room: the room (its user is
    counted in it, in this process's ``Registry``), and the version of the members its
    page has. What outlives it is the store's entry for this process and user: in Redis
    (or process memory), until the user's last socket here leaves the room, or at most
    CHAT_PRESENCE_TTL after this process's last heartbeat (it died)."""

    def __init__(self, *, username: str, send: Callable[..., Awaitable[None]]):
        self.username = username
        self.send = send  # the consumer's: a text frame to the page
        self.rooms: dict[str, Room] = {}  # counted in, by slug
        self.versions: dict[str, Version] = {}  # of the members the page has, by slug
        self.pages: TokenBucket | None = None  # the limit on its pages of members, once it asks for one

    async def enter(self, *, room: Room) -> Members:
        """Count this socket in the room; the room's first page of members, this user counted."""
        registry = registry_get()
        if room.slug not in self.rooms:
            self.rooms[room.slug] = room
            registry.count_change(room=room, username=self.username, by=1)
        applied = await registry.flush_await(room_id=room.pk, members=True)
        self.versions[room.slug] = applied.version
        return applied.members

    async def exit(self, *, room: Room) -> None:
        """Count this socket out of the room."""
        self.versions.pop(room.slug, None)
        if self.rooms.pop(room.slug, None) is None:
            return
        registry = registry_get()
        if registry.count_change(room=room, username=self.username, by=-1):
            # A failed flush is logged by the registry, and the entry expires by itself.
            with contextlib.suppress(Exception):
                await registry.flush_await(room_id=room.pk, members=False)

    def abandon(self) -> None:
        """The consumer ended without exit() (it crashed): counted out of every room, by a flush
        that runs without it. Its user must not stay listed for good."""
        registry = registry_get()
        for room in self.rooms.values():
            if registry.count_change(room=room, username=self.username, by=-1):
                registry.flush_schedule(room_id=room.pk)

    async def changed(self, message: dict) -> None:
        """A room's change (``change_message``): passed on when it is the next version, else the whole list."""
        slug = message["room"]
        have = self.versions.get(slug)
        if have is None:  # left the room since
            return
        version = Version(message["epoch"], message["version"])
        if version.epoch == have.epoch:
            if version.number <= have.number:
                return
            if version.number == have.number + 1 and message["text"] is not None:
                self.versions[slug] = version
                await self.send(text_data=message["text"])
                return
        members, now = await registry_get().members_read(room_id=self.rooms[slug].pk, at_least=version)
        if now != have:
            self.versions[slug] = now
            await self.members_send(slug=slug, members=members)

    async def reconnected(self) -> None:
        """The channel layer is back after an outage. The changes announced meanwhile are lost, and in a
        quiet room no later change would reveal the gap: the whole list of every room, read once per
        room for all the process's sockets (``members_read``)."""
        registry = registry_get()
        for slug, have in list(self.versions.items()):
            try:
                members, now = await registry.members_read(room_id=self.rooms[slug].pk, at_least=have)
            except REDIS_DOWN:
                return  # away again: its return brings another layer_reconnected
            self.versions[slug] = now
            await self.members_send(slug=slug, members=members)

    async def members_send(self, *, slug: str, members: Members) -> None:
        frame = presence_members_frame(slug=slug, members=members.names, count=members.count)
        await self.send(text_data=frame_encode(frame=frame))

    async def page_send(self, *, room: Room, after: str) -> None:
        """The page's ``members`` command: the names after ``after``, a page of them, read from the store
        for this page alone. The changes keep coming as ever: the page adds a name that joined only
        if it falls among the names it has (chat/README.md)."""
        if self.pages is None:  # most pages never ask: no bucket per socket until one does
            self.pages = TokenBucket(rate=MEMBERS_PAGES_RATE, burst=MEMBERS_PAGES_BURST)
        if not self.pages.take():
            raise ClientError("rate_limited", "Too many pages of members; wait a moment.")
        members, _ = (
            await registry_get().store_get().snapshot(room_id=room.pk, after=after, limit=settings.CHAT_MEMBERS_LISTED)
        )
        frame = members_frame(
            slug=room.slug, after=after, members=members.names, count=members.count, more=members.more
        )
        await self.send(text_data=frame_encode(frame=frame))
