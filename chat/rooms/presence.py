"""Who is in a room, across every process and tab, at a cost that does not grow
with the number of sockets.

**Counted per process.** Each process (each running event loop: daphne has one,
every test its own) keeps a registry: how many of its sockets each user has in
each room. Only a user's first socket in a room, and their last one leaving,
changes anything outside the process: a second tab, or one of two closing, is a
local count and nothing more.

**Stored per room.** The store (Redis with REDIS_URL, else process memory, with
the same semantics) has one entry per process and user in the room,
``"<process> <username>"``, expiring CHAT_PRESENCE_TTL seconds after it was last
refreshed; a count of live entries per user; and a version, raised by every
change of the set of users. One ``apply`` adds, refreshes and removes entries,
prunes the expired ones (a dead process's) and answers who joined and who left,
atomically (a Lua script in Redis). Expiry goes by the store's clock, never a
process's: Redis's own (``TIME``), so that hosts whose clocks differ by more
than the TTL neither prune each other's users nor have theirs pruned.

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
"""

import asyncio
import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import redis.asyncio as redis
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import NoScriptError

from realtime_common.consumers import frame_encode
from realtime_common.layers import REDIS_DOWN
from realtime_common.loops import loop_local
from realtime_common.metrics import site_inc
from realtime_common.outages import OutageLog

from .metrics import MEMBERS_PRESENT
from .models import Room
from .wire import presence_change_frame, presence_members_frame, room_group

logger = logging.getLogger(__name__)


class Version(NamedTuple):
    """How far a room's users have changed: ``number`` rises with every change.
    A store that lost the room's keys starts again at 1 in a new ``epoch``."""

    epoch: str
    number: int


@dataclass(frozen=True)
class Change:
    """One room's part of an apply."""

    room_id: int
    adds: tuple[str, ...] = ()  # entries to add, or to refresh when present
    removes: tuple[str, ...] = ()
    members: bool = False  # also answer the members after the change


@dataclass(frozen=True)
class Applied:
    version: Version
    joined: list[str]
    left: list[str]
    members: list[str] | None  # when the change asked for them


def entry_user(*, entry: str) -> str:
    return entry.partition(" ")[2]


def epoch_new() -> str:
    return uuid.uuid4().hex


@dataclass
class MemoryRoom:
    version: Version
    entries: dict[str, float] = field(default_factory=dict)  # entry -> expiry time
    users: dict[str, int] = field(default_factory=dict)  # username -> live entries


class MemoryStore:
    """The store of a site without Redis, as far as its in-memory channel layer reaches: one process."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic):
        self.rooms: dict[int, MemoryRoom] = {}
        # One process's store, so one clock: the monotonic one, which no clock adjustment moves.
        self.clock = clock
        # Event loops of other threads (a test's, a management command's) may use it too.
        self.lock = threading.Lock()

    async def apply(self, *, changes: list[Change], ttl: float) -> list[Applied]:
        with self.lock:
            now = self.clock()
            return [self.change_apply(change=change, now=now, ttl=ttl) for change in changes]

    def change_apply(self, *, change: Change, now: float, ttl: float) -> Applied:
        room = self.rooms.setdefault(change.room_id, MemoryRoom(version=Version(epoch_new(), 0)))
        net: dict[str, int] = {}

        def drop(entry: str) -> None:
            if room.entries.pop(entry, None) is None:
                return
            user = entry_user(entry=entry)
            room.users[user] -= 1
            if not room.users[user]:
                del room.users[user]
                net[user] = net.get(user, 0) - 1

        for entry in [entry for entry, expiry in room.entries.items() if expiry <= now]:
            drop(entry)
        for entry in change.removes:
            drop(entry)
        for entry in change.adds:
            if entry not in room.entries:
                user = entry_user(entry=entry)
                room.users[user] = room.users.get(user, 0) + 1
                if room.users[user] == 1:
                    net[user] = net.get(user, 0) + 1
            room.entries[entry] = now + ttl
        joined = sorted(user for user, delta in net.items() if delta > 0)
        left = sorted(user for user, delta in net.items() if delta < 0)
        if joined or left:
            room.version = room.version._replace(number=room.version.number + 1)
        members = sorted(room.users) if change.members else None
        return Applied(version=room.version, joined=joined, left=left, members=members)

    async def snapshot(self, *, room_id: int) -> tuple[list[str], Version]:
        with self.lock:
            room = self.rooms.get(room_id)
            return (sorted(room.users), room.version) if room else ([], Version("", 0))

    async def close(self) -> None:
        pass


# KEYS: the room's entries (a sorted set scored by expiry), users (a hash: username ->
# live entries) and version (a hash: epoch, number). ARGV: the entries' TTL in seconds,
# the keys' lifetime in seconds, an epoch in case the version is new, "1" to answer the
# members, the number of adds, the adds, the removes. The time is the Redis server's,
# the one clock every process shares (scripts may read it since Redis 5).
APPLY_SCRIPT = """
local entries, users, version = KEYS[1], KEYS[2], KEYS[3]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local expiry = now + tonumber(ARGV[1])
local adds = tonumber(ARGV[5])
local net = {}

local function user_of(entry)
  return string.sub(entry, string.find(entry, ' ', 1, true) + 1)
end

local function drop(entry)
  if redis.call('ZREM', entries, entry) == 1 then
    local user = user_of(entry)
    if redis.call('HINCRBY', users, user, -1) <= 0 then
      redis.call('HDEL', users, user)
      net[user] = (net[user] or 0) - 1
    end
  end
end

for _, entry in ipairs(redis.call('ZRANGEBYSCORE', entries, '-inf', now)) do drop(entry) end
for i = 6 + adds, #ARGV do drop(ARGV[i]) end
for i = 6, 5 + adds do
  if redis.call('ZADD', entries, expiry, ARGV[i]) == 1 then
    local user = user_of(ARGV[i])
    if redis.call('HINCRBY', users, user, 1) == 1 then net[user] = (net[user] or 0) + 1 end
  end
end

local joined, left = {}, {}
for user, delta in pairs(net) do
  if delta > 0 then joined[#joined + 1] = user elseif delta < 0 then left[#left + 1] = user end
end
redis.call('HSETNX', version, 'epoch', ARGV[3])
local number
if #joined + #left > 0 then
  number = redis.call('HINCRBY', version, 'number', 1)
else
  number = tonumber(redis.call('HGET', version, 'number') or 0)
end
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[2]) end
local members = {}
if ARGV[4] == '1' then members = redis.call('HKEYS', users) end
return {redis.call('HGET', version, 'epoch'), number, joined, left, members}
"""


def room_keys(*, room_id: int) -> list[str]:
    return [f"rooms:presence:{room_id}:{part}" for part in ("entries", "users", "version")]


class RedisStore:
    """The store shared by every process of the site. Bound to the event loop that first uses it."""

    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_keepalive=True)
        self.script = self.client.register_script(APPLY_SCRIPT)

    async def apply(self, *, changes: list[Change], ttl: float) -> list[Applied]:
        try:
            replies = await self.apply_pipeline(changes=changes, ttl=ttl)
        except NoScriptError:  # a restarted Redis has forgotten the script; nothing was applied
            await self.client.script_load(self.script.script)
            replies = await self.apply_pipeline(changes=changes, ttl=ttl)
        return [
            Applied(
                version=Version(epoch, number),
                joined=sorted(joined),
                left=sorted(left),
                members=sorted(members) if change.members else None,
            )
            for change, (epoch, number, joined, left, members) in zip(changes, replies, strict=True)
        ]

    async def apply_pipeline(self, *, changes: list[Change], ttl: float) -> list:
        # EVALSHA straight into the pipeline: redis-py's Script would first ask
        # SCRIPT EXISTS, a second round trip on every call.
        async with self.client.pipeline(transaction=False) as pipeline:
            for change in changes:
                keys = room_keys(room_id=change.room_id)
                args = [ttl, math.ceil(ttl), epoch_new(), int(change.members), len(change.adds)]
                pipeline.evalsha(self.script.sha, len(keys), *keys, *args, *change.adds, *change.removes)
            return await pipeline.execute()

    async def snapshot(self, *, room_id: int) -> tuple[list[str], Version]:
        _, users, version = room_keys(room_id=room_id)
        async with self.client.pipeline(transaction=True) as pipeline:
            pipeline.hkeys(users)
            pipeline.hmget(version, "epoch", "number")
            members, (epoch, number) = await pipeline.execute()
        return sorted(members), Version(epoch or "", int(number or 0))

    async def close(self) -> None:
        await self.client.aclose()


MEMORY = MemoryStore()


def store_new() -> RedisStore | MemoryStore:
    return RedisStore(settings.REDIS_URLS[0]) if settings.REDIS_URLS else MEMORY


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


class Registry:
    """This process's presence: its sockets' rooms and users, its flushes, its heartbeat."""

    def __init__(self):
        self.process = uuid.uuid4().hex
        self.rooms: dict[int, RoomState] = {}
        self.store: RedisStore | MemoryStore | None = None
        self.heartbeat: asyncio.Task | None = None
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
        if self.heartbeat is None:
            self.heartbeat = asyncio.create_task(self.heartbeat_run())
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
                    members=state.members_wanted,
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

    async def heartbeat_run(self) -> None:
        try:
            while self.rooms:
                await asyncio.sleep(settings.CHAT_PRESENCE_HEARTBEAT)
                idle = []
                for room_id, state in self.rooms.items():
                    state.refresh = True  # a room with a flush on refreshes with its next one
                    if not state.flushing:
                        state.flushing = True
                        idle.append(room_id)
                if idle:
                    await self.rooms_flush(room_ids=idle)
        finally:
            # Synchronously, so that a room entered from now on starts a heartbeat (and a store) of its own.
            store, self.store, self.heartbeat = self.store, None, None
            if store is not None:
                await store.close()

    def entry(self, *, username: str) -> str:
        return f"{self.process} {username}"

    async def members_read(self, *, room_id: int, at_least: Version) -> tuple[list[str], Version]:
        """The room's members, at ``at_least`` or later (or in another epoch)."""
        members, version = await self.snapshot_shared(room_id=room_id)
        if version.epoch == at_least.epoch and version.number < at_least.number:
            # That read began before this version was made. The next one begins after.
            members, version = await self.snapshot_shared(room_id=room_id)
        return members, version

    async def snapshot_shared(self, *, room_id: int) -> tuple[list[str], Version]:
        """One read of the room's members for everyone who asks while it is under way."""
        read = self.reads.get(room_id)
        if read is None:
            read = self.reads[room_id] = asyncio.ensure_future(self.store_get().snapshot(room_id=room_id))
            read.add_done_callback(lambda _: self.reads.pop(room_id, None))
        return await asyncio.shield(read)


def change_message(*, slug: str, applied: Applied) -> dict:
    """The group message of a change: its version, and the page's frame encoded once for every socket."""
    return {
        "type": "presence.changed",
        "room": slug,
        "epoch": applied.version.epoch,
        "version": applied.version.number,
        "text": frame_encode(frame=presence_change_frame(slug=slug, joined=applied.joined, left=applied.left)),
    }


registry_get = loop_local(Registry)


class PresenceMixin:
    """For a consumer: counts its socket in the rooms it enters, and passes each room's
    presence changes on to its page, in order, with the full list after a gap."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.presence_rooms: dict[str, Room] = {}  # counted in, by slug
        self.presence_versions: dict[str, Version] = {}  # of the members the page has, by slug

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # disconnect() exits every room, but a consumer that crashed never ran it:
            # its user must not stay listed for good.
            for room in self.presence_rooms.values():
                if registry_get().count_change(room=room, username=scope["user"].get_username(), by=-1):
                    registry_get().flush_schedule(room_id=room.pk)

    async def presence_enter(self, *, room: Room) -> list[str]:
        """Count this socket in the room; the room's members, this user included."""
        registry = registry_get()
        if room.slug not in self.presence_rooms:
            self.presence_rooms[room.slug] = room
            registry.count_change(room=room, username=self.scope["user"].get_username(), by=1)
        applied = await registry.flush_await(room_id=room.pk, members=True)
        self.presence_versions[room.slug] = applied.version
        return applied.members

    async def presence_exit(self, *, room: Room) -> None:
        """Count this socket out of the room."""
        self.presence_versions.pop(room.slug, None)
        if self.presence_rooms.pop(room.slug, None) is None:
            return
        registry = registry_get()
        if registry.count_change(room=room, username=self.scope["user"].get_username(), by=-1):
            # A failed flush is logged by the registry, and the entry expires by itself.
            with contextlib.suppress(Exception):
                await registry.flush_await(room_id=room.pk, members=False)

    async def layer_reconnected(self, message):
        await super().layer_reconnected(message)
        # The changes announced while this process's pub/sub connection was away are lost, and in a
        # quiet room no later change would reveal the gap: the whole list of every room, read once
        # per room for all the process's sockets (``members_read``).
        registry = registry_get()
        for slug, have in list(self.presence_versions.items()):
            try:
                members, now = await registry.members_read(room_id=self.presence_rooms[slug].pk, at_least=have)
            except REDIS_DOWN:
                return  # away again: its return brings another layer_reconnected
            self.presence_versions[slug] = now
            await self.send_json(presence_members_frame(slug=slug, members=members))

    async def presence_changed(self, message):
        slug = message["room"]
        have = self.presence_versions.get(slug)
        if have is None:  # left the room since
            return
        version = Version(message["epoch"], message["version"])
        if version.epoch == have.epoch:
            if version.number <= have.number:
                return
            if version.number == have.number + 1:
                self.presence_versions[slug] = version
                await self.send(text_data=message["text"])
                return
        members, now = await registry_get().members_read(room_id=self.presence_rooms[slug].pk, at_least=version)
        if now != have:
            self.presence_versions[slug] = now
            await self.send_json(presence_members_frame(slug=slug, members=members))
