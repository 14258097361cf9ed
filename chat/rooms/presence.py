"""Who is in a room, across every process and tab.

Each socket in a room has an entry of its own that expires CHAT_PRESENCE_TTL
seconds after its consumer last refreshed it, and live consumers refresh theirs
every CHAT_PRESENCE_HEARTBEAT seconds. So a user stays listed while any of
their tabs is open, and a process that dies without saying goodbye takes its
sockets off the list anyway, as soon as their entries expire.

With Redis (REDIS_URL), a room's entries are a sorted set scored by expiry
time, shared by every process. Without, they are a dict in this process, which
is as far as the in-memory channel layer reaches anyway.
"""

import functools
import math
import threading
import time

import redis
from asgiref.sync import sync_to_async
from django.conf import settings


def presence_touch(*, room_id: int, connection: str, username: str) -> list[str]:
    """Add or refresh the entry of one socket (its channel name); the room's members now."""
    entry, ttl = f"{connection} {username}", settings.CHAT_PRESENCE_TTL
    return members(store().touch(room_key(room_id), entry, now=time.time(), ttl=ttl))


def presence_remove(*, room_id: int, connection: str, username: str) -> None:
    store().remove(room_key(room_id), f"{connection} {username}")


# For consumers. Presence talks to Redis, not the database: no need to queue behind the ORM's thread.
apresence_touch = sync_to_async(presence_touch, thread_sensitive=False)
apresence_remove = sync_to_async(presence_remove, thread_sensitive=False)


def room_key(room_id: int) -> str:
    return f"rooms:presence:{room_id}"


def members(entries: list[str]) -> list[str]:
    """Each user once, however many sockets they have in the room."""
    return sorted({entry.partition(" ")[2] for entry in entries})


class RedisPresence:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_keepalive=True)

    def touch(self, key: str, entry: str, *, now: float, ttl: float) -> list[str]:
        # One round trip, applied as one (MULTI/EXEC).
        pipeline = self.client.pipeline()
        pipeline.zadd(key, {entry: now + ttl})
        # A room nobody refreshes any more takes its set with it.
        pipeline.expire(key, math.ceil(ttl))
        pipeline.zremrangebyscore(key, "-inf", now)
        pipeline.zrange(key, 0, -1)
        return pipeline.execute()[-1]

    def remove(self, key: str, entry: str) -> None:
        self.client.zrem(key, entry)


class MemoryPresence:
    def __init__(self):
        self.rooms: dict[str, dict[str, float]] = {}
        self.lock = threading.Lock()

    def touch(self, key: str, entry: str, *, now: float, ttl: float) -> list[str]:
        with self.lock:
            room = self.rooms.setdefault(key, {})
            room[entry] = now + ttl
            for expired in [entry for entry, expires in room.items() if expires <= now]:
                del room[expired]
            return list(room)

    def remove(self, key: str, entry: str) -> None:
        with self.lock:
            self.rooms.get(key, {}).pop(entry, None)


MEMORY = MemoryPresence()


@functools.cache
def redis_presence(url: str) -> RedisPresence:
    return RedisPresence(url)


def store() -> RedisPresence | MemoryPresence:
    return redis_presence(settings.REDIS_URLS[0]) if settings.REDIS_URLS else MEMORY
