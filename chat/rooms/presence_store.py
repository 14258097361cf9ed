"""The presence store: who is in each room, shared by every process of the site
(rooms/presence.py counts, flushes and announces; this only stores).

Per room it keeps one entry per process and user, ``"<process> <username>"``,
expiring CHAT_PRESENCE_TTL seconds after it was last refreshed; a count of live
entries per user; the users in sort order; and a version, raised by every change of
the set of users. Where: in Redis (four keys per room, expiring with the entries), or,
without REDIS_URL or REDIS_SENTINELS, in process memory (``MemoryStore``, with the same
semantics).

Members are read a page at a time (``Members``): the first ``limit`` users after a
name, and how many there are, so that a room of thousands costs a page to read and
to send, not the whole list (chat/README.md: CHAT_MEMBERS_LISTED). In Redis the users
in sort order are a sorted set whose scores are all 0, which Redis orders by the
names' bytes (UTF-8: the order of Python's ``sorted``): a page is one ZRANGEBYLEX,
O(log n + limit), and the count one ZCARD, O(1).

One ``apply`` adds, refreshes and removes entries, prunes the expired ones (a dead
process's) and answers who joined and who left, atomically (a Lua script in
Redis). Expiry goes by the store's clock, never a process's: Redis's own
(``TIME``), so that hosts whose clocks differ by more than the TTL neither prune
each other's users nor have theirs pruned.
"""

import bisect
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from redis.exceptions import NoScriptError

from realtime_common.redis_servers import POOL_SIZE, POOL_WAIT, redis_client_async


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
    members: int = 0  # also answer the first page of the members after the change, this long


@dataclass(frozen=True)
class Members:
    """A page of a room's users: ``names``, sorted, the first after the name the page was asked
    after; ``count``, how many users are in the room; ``more``, whether any come after these."""

    names: list[str]
    count: int
    more: bool


@dataclass(frozen=True)
class Applied:
    version: Version
    joined: list[str]
    left: list[str]
    count: int  # users in the room after the change
    members: Members | None  # the first page, when the change asked for it


def entry_user(*, entry: str) -> str:
    return entry.partition(" ")[2]


def epoch_new() -> str:
    return uuid.uuid4().hex


def members_page(*, names: list[str], count: int, limit: int) -> Members:
    """``names``: up to ``limit`` + 1 sorted users; the one past ``limit`` only tells that there are more."""
    return Members(names=names[:limit], count=count, more=len(names) > limit)


def sorted_page(*, users, after: str, limit: int) -> Members:
    """A page of ``users`` (any iterable of names), from memory."""
    ordered = sorted(users)
    start = bisect.bisect_right(ordered, after)
    return members_page(names=ordered[start : start + limit + 1], count=len(ordered), limit=limit)


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
        members = sorted_page(users=room.users, after="", limit=change.members) if change.members else None
        return Applied(version=room.version, joined=joined, left=left, count=len(room.users), members=members)

    async def snapshot(self, *, room_id: int, after: str = "", limit: int) -> tuple[Members, Version]:
        """A page of the room's members (``limit`` after ``after``; "" for the first) and the room's version."""
        with self.lock:
            room = self.rooms.get(room_id)
            users, version = (room.users, room.version) if room else ((), Version("", 0))
            return sorted_page(users=users, after=after, limit=limit), version

    async def close(self) -> None:
        pass


# KEYS: the room's entries (a sorted set scored by expiry), users (a hash: username ->
# live entries), version (a hash: epoch, number, and names: the number the names were
# last brought to) and names (the users, a sorted set of score 0: in byte order). ARGV:
# the entries' TTL in seconds, the keys' lifetime in seconds, an epoch in case the version
# is new, how many members to answer (0: none; one more is read, to tell whether there
# are more), the number of adds, the adds, the removes. The time is the Redis server's, the one clock every process shares (scripts
# may read it since Redis 5). Returns the epoch, the version's number, who joined, who
# left, the first members, and how many there are.
APPLY_SCRIPT = """
local entries, users, version, names = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local expiry = now + tonumber(ARGV[1])
local adds = tonumber(ARGV[5])
local net = {}
-- Whether the names followed every change of the users so far. A process of an older version (before
-- the names, in a rolling deploy) changes the users without them, and raises the version's number, not
-- the number this script last brought the names to: e.g. one user in and another out, which leaves the
-- two counts equal and the two sets different.
local synced = redis.call('HMGET', version, 'number', 'names')
local stale = tonumber(synced[1] or 0) ~= tonumber(synced[2] or 0)

local function user_of(entry)
  return string.sub(entry, string.find(entry, ' ', 1, true) + 1)
end

local function drop(entry)
  if redis.call('ZREM', entries, entry) == 1 then
    local user = user_of(entry)
    if redis.call('HINCRBY', users, user, -1) <= 0 then
      redis.call('HDEL', users, user)
      redis.call('ZREM', names, user)
      net[user] = (net[user] or 0) - 1
    end
  end
end

for _, entry in ipairs(redis.call('ZRANGEBYSCORE', entries, '-inf', now)) do drop(entry) end
for i = 6 + adds, #ARGV do drop(ARGV[i]) end
for i = 6, 5 + adds do
  if redis.call('ZADD', entries, expiry, ARGV[i]) == 1 then
    local user = user_of(ARGV[i])
    if redis.call('HINCRBY', users, user, 1) == 1 then
      redis.call('ZADD', names, 0, user)
      net[user] = (net[user] or 0) + 1
    end
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
-- The names follow the users. Rebuilt, once, after an older process's changes, or when the names
-- expired while an older process kept the other keys alive (their counts differ: both O(1)).
local count = redis.call('HLEN', users)
if stale or redis.call('ZCARD', names) ~= count then
  redis.call('DEL', names)
  for _, user in ipairs(redis.call('HKEYS', users)) do redis.call('ZADD', names, 0, user) end
end
redis.call('HSET', version, 'names', number)
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[2]) end
local members = {}
local limit = tonumber(ARGV[4])
if limit > 0 then members = redis.call('ZRANGEBYLEX', names, '-', '+', 'LIMIT', 0, limit + 1) end
return {redis.call('HGET', version, 'epoch'), number, joined, left, members, count}
"""


def room_keys(*, room_id: int) -> list[str]:
    return [f"rooms:presence:{room_id}:{part}" for part in ("entries", "users", "version", "names")]


class RedisStore:
    """The store shared by every process of the site. Bound to the event loop that first uses it."""

    def __init__(self, *, host: dict):
        # host: a channels-redis hosts entry (realtime_common.redis_servers), a URL's or Sentinel's,
        # with the connection options every client shares.
        self.client = redis_client_async(host=host, max_connections=POOL_SIZE, timeout=POOL_WAIT, decode_responses=True)
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
                count=count,
                members=members_page(names=members, count=count, limit=change.members) if change.members else None,
            )
            for change, (epoch, number, joined, left, members, count) in zip(changes, replies, strict=True)
        ]

    async def apply_pipeline(self, *, changes: list[Change], ttl: float) -> list:
        # EVALSHA straight into the pipeline: redis-py's Script would first ask
        # SCRIPT EXISTS, a second round trip on every call.
        async with self.client.pipeline(transaction=False) as pipeline:
            for change in changes:
                keys = room_keys(room_id=change.room_id)
                args = [ttl, math.ceil(ttl), epoch_new(), change.members, len(change.adds)]
                pipeline.evalsha(self.script.sha, len(keys), *keys, *args, *change.adds, *change.removes)
            return await pipeline.execute()

    async def snapshot(self, *, room_id: int, after: str = "", limit: int) -> tuple[Members, Version]:
        """A page of the room's members (``limit`` after ``after``; "" for the first) and the room's
        version, in one round trip (MULTI): O(log n + limit) in Redis, whatever the room's size."""
        _, _, version, names = room_keys(room_id=room_id)
        async with self.client.pipeline(transaction=True) as pipeline:
            # "(" excludes ``after`` itself; "(" + "" is every name.
            pipeline.zrangebylex(names, f"({after}", "+", start=0, num=limit + 1)
            pipeline.zcard(names)
            pipeline.hmget(version, "epoch", "number")
            page, count, (epoch, number) = await pipeline.execute()
        return members_page(names=page, count=count, limit=limit), Version(epoch or "", int(number or 0))

    async def close(self) -> None:
        await self.client.aclose()
