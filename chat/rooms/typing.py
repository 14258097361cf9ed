"""Who is typing in each room: never stored, shared between processes by
announcements, at a cost per keystroke that does not grow with the room.

A consumer calls its ``SocketTyping`` (at the end of this file), which makes its
socket a reader of the room in this process's ``Registry``: the Registry keeps
the process's typists, hears the announcements, and sends the lists.

**Announced only as needed.** A user's first ``typing`` in a room is announced
at once, to the room's typing group, for CHAT_TYPING_TTL seconds. The ones that
follow only note the time in the process that holds their socket. A fifth of the
TTL before the announcement runs out, that process announces them again, for the
TTL from their latest ``typing``, if there was one since; if not, every process
drops them as it runs out, by itself. Their message, or the socket they typed on
leaving the room or closing, announces a stop: dropped at once, everywhere. An
honest page (one ``typing`` every 2 s) costs one announcement every 2 to 4 s
while its user types; a lost one (Redis away) heals within the TTL.

**Heard once per process.** Each process (each running event loop: daphne has
one, every test its own) has one channel of its own, its listener, in the typing
group of every room it has sockets in: an announcement reaches each process once,
not each socket, and wakes no consumer. The listener keeps, per room, who is
typing and until when (on its own clock: an announcement says for how long), and
one timer per room, for the next expiry or announcement due.

**Shown as changes.** When a room's list changes, the process sends a ``typing``
frame, from the event loop, to each of its sockets in the room whose own list
(everyone typing but the socket's own user) changed, encoded once per distinct
list: a user who starts typing sends nothing to their own tabs, and a renewal
that changes no list sends nothing at all.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field

from channels.layers import get_channel_layer
from django.conf import settings

from realtime_common.broadcast import group_send_logged
from realtime_common.consumers import ClientError, frame_encode
from realtime_common.layers import REDIS_DOWN, error_text
from realtime_common.loops import Rounds, loop_local
from realtime_common.metrics import site_inc
from realtime_common.outages import OutageLog
from realtime_common.throttle import TokenBucket

from .metrics import TYPING_NOTICES
from .models import Room
from .wire import typing_frame, typing_group

logger = logging.getLogger(__name__)

HEARD = "typing.heard"
# An announcement is renewed this share of the TTL before it runs out, so that
# the renewal reaches every process before it drops the user.
RENEW_LEAD = 0.2
# How soon the listener tries again to join or leave typing groups, or to receive, after Redis failed it.
RETRY_SECONDS = 1.0


@dataclass
class Reader:
    """One of this process's sockets in the room."""

    username: str
    send: Callable[..., Awaitable[None]]
    shown: tuple[str, ...] | None = None  # the list its page shows; None until its joined frame went


@dataclass
class Typist:
    """A user typing on this process's sockets."""

    sockets: dict[str, float]  # channel name -> when it last sent typing (event loop time)
    until: float  # when the room was told they stop, unless told again

    def due(self, *, ttl: float) -> float:
        """When this process must act: renew the announcement shortly before it runs
        out if they typed since it was made, else forget them as it runs out."""
        if max(self.sockets.values()) + ttl > self.until:
            return self.until - ttl * RENEW_LEAD
        return self.until


@dataclass
class RoomTyping:
    """A room as this process sees it."""

    room_id: int
    slug: str
    readers: dict[str, Reader] = field(default_factory=dict)  # by channel name
    heard: dict[str, float] = field(default_factory=dict)  # username -> when they stop being listed
    typists: dict[str, Typist] = field(default_factory=dict)  # by username
    timer: asyncio.TimerHandle | None = None
    pushing: bool = False  # a push task is sending the room's lists
    dirty: bool = False  # the lists changed since that task began its round


def heard_message(*, room_id: int, username: str, ttl: float) -> dict:
    """An announcement: list the user for ``ttl`` seconds from now, or (0) no longer."""
    return {"type": HEARD, "room": room_id, "user": username, "ttl": ttl}


class Registry(Rounds):
    """This process's typing, in memory, while it has sockets in any room: its rooms'
    readers, typists and timers; its listener; and the task (``Rounds``) that puts the
    listener in the rooms' typing groups, or out, and stops it after the last room."""

    def __init__(self):
        self.rooms: dict[int, RoomTyping] = {}
        self.channel: str | None = None  # the listener's
        self.listener: asyncio.Task | None = None
        self.listening: set[int] = set()  # rooms whose typing group the listener is in
        self.unsynced: set[int] = set()  # rooms whose membership may be out of date
        super().__init__(
            name="typing",
            members=self.unsynced,
            period=lambda: RETRY_SECONDS,  # a round waits only after one that Redis failed
            round=self.groups_sync,
            ended=self.listener_stop,
        )
        self.tasks: set[asyncio.Task] = set()  # the event loop keeps only weak references to tasks
        self.outages = OutageLog(
            logger=logger,
            failing="typing: the channel layer failed (%s); retrying every second",
            working="typing: the channel layer works again",
        )

    def task_spawn(self, coroutine: Coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- sockets -----------------------------------------------------------------------------

    async def reader_add(self, *, room: Room, channel: str, username: str, send) -> None:
        """Count the socket in the room, and have the listener in its typing group, before its joined frame."""
        state = self.rooms.get(room.pk) or self.rooms.setdefault(room.pk, RoomTyping(room_id=room.pk, slug=room.slug))
        state.readers[channel] = Reader(username=username, send=send)
        self.unsynced.add(room.pk)
        await self.round_await()

    async def reader_show(self, *, room_id: int, channel: str) -> None:
        """After the socket's joined frame, which made its page forget the list: the list, if anyone types."""
        state = self.rooms.get(room_id)
        reader = state.readers.get(channel) if state is not None else None
        if reader is not None:
            reader.shown = ()
            await self.reader_push(state=state, reader=reader, everyone=tuple(sorted(state.heard)), texts={})

    async def reader_remove(self, *, room_id: int, channel: str) -> None:
        """The socket left the room or closed: what it typed is over, and the listener leaves a room it was the last in."""
        state = self.rooms.get(room_id)
        reader = state.readers.pop(channel, None) if state is not None else None
        if reader is None:
            return
        typist = state.typists.get(reader.username)
        over = False
        if typist is not None and typist.sockets.pop(channel, None) is not None:
            now = asyncio.get_running_loop().time()
            over = not any(last + settings.CHAT_TYPING_TTL > now for last in typist.sockets.values())
            if over:
                del state.typists[reader.username]
        if not state.readers:
            if state.timer is not None:
                state.timer.cancel()
            del self.rooms[room_id]
            self.unsynced.add(room_id)
        if over:
            await self.announce(room_id=room_id, username=reader.username, ttl=0)
        if room_id in self.unsynced:
            await self.round_await()

    # -- typing ------------------------------------------------------------------------------

    async def typing_note(self, *, room_id: int, channel: str, username: str) -> None:
        """The user typed on this socket: announced if they were not, else only noted."""
        state = self.rooms.get(room_id)
        if state is None or channel not in state.readers:
            return  # its room's enter failed half way: the socket shows no list, and notes none
        ttl = settings.CHAT_TYPING_TTL
        now = asyncio.get_running_loop().time()
        typist = state.typists.get(username)
        if typist is not None:
            typist.sockets[channel] = now
            self.timer_arm(state=state)
            return
        state.typists[username] = Typist(sockets={channel: now}, until=now + ttl)
        self.timer_arm(state=state)
        await self.announce(room_id=room_id, username=username, ttl=ttl)

    async def typing_end(self, *, room_id: int, username: str) -> None:
        """The user's message was stored: they are not typing it any more, on any process."""
        state = self.rooms.get(room_id)
        if state is None or (state.typists.pop(username, None) is None and username not in state.heard):
            return
        self.timer_arm(state=state)
        await self.announce(room_id=room_id, username=username, ttl=0)

    async def announce(self, *, room_id: int, username: str, ttl: float) -> None:
        # A failure is logged: typing is shown again by the next announcement, or expires.
        await group_send_logged(
            group=typing_group(room_id=room_id), message=heard_message(room_id=room_id, username=username, ttl=ttl)
        )

    # -- the listener ------------------------------------------------------------------------

    def heard(self, *, room_id: int, username: str, ttl: float) -> None:
        state = self.rooms.get(room_id)
        if state is None:
            return  # late, for a room this process has no socket in any more
        listed = username in state.heard
        if ttl > 0:
            until = asyncio.get_running_loop().time() + ttl
            state.heard[username] = max(state.heard.get(username, until), until)
        else:
            state.heard.pop(username, None)
            # Their message, or the socket they typed on going: over for this process's sockets of theirs too.
            state.typists.pop(username, None)
        self.timer_arm(state=state)
        if listed != (username in state.heard):
            self.push_schedule(state=state)

    def timer_arm(self, *, state: RoomTyping) -> None:
        """The room's one timer, at its next expiry or announcement due."""
        ttl = settings.CHAT_TYPING_TTL
        due = min([*state.heard.values(), *(typist.due(ttl=ttl) for typist in state.typists.values())], default=None)
        if state.timer is not None:
            if due is not None and state.timer.when() == due:
                return
            state.timer.cancel()
        state.timer = None if due is None else asyncio.get_running_loop().call_at(due, self.room_due, state)

    def room_due(self, state: RoomTyping) -> None:
        state.timer = None  # this one went off: timer_arm must not take it for the next
        ttl = settings.CHAT_TYPING_TTL
        now = asyncio.get_running_loop().time()
        expired = [username for username, until in state.heard.items() if until <= now]
        for username in expired:
            del state.heard[username]
        for username, typist in list(state.typists.items()):
            if typist.due(ttl=ttl) > now:
                continue
            latest = max(typist.sockets.values())
            if latest + ttl > typist.until:
                typist.until = latest + ttl
                self.task_spawn(self.announce(room_id=state.room_id, username=username, ttl=typist.until - now))
            else:
                del state.typists[username]
        self.timer_arm(state=state)
        if expired:
            self.push_schedule(state=state)

    async def listen(self, *, layer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
                if message["type"] == HEARD:  # not layer.reconnected: what was lost meanwhile heals by itself
                    self.heard(room_id=message["room"], username=message["user"], ttl=message["ttl"])
            except REDIS_DOWN as error:  # the core layer's receive, while Redis is away
                self.outages.failed(error_text(error))
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:  # anything else must not end the process's typing for good
                logger.exception("typing: the listener failed on a message; listening on")
                await asyncio.sleep(RETRY_SECONDS)

    async def groups_sync(self) -> None:
        """Put the listener in the typing group of every room this process has sockets in,
        and out of the others. While Redis fails it, the next round tries again, RETRY_SECONDS later."""
        layer = get_channel_layer()
        while self.unsynced:
            room_id = self.unsynced.pop()
            try:
                if room_id in self.rooms and room_id not in self.listening:
                    if self.channel is None:
                        self.channel = await layer.new_channel()
                    if self.listener is None or self.listener.done():
                        self.listener = asyncio.create_task(self.listen(layer=layer, channel=self.channel))
                    await layer.group_add(typing_group(room_id=room_id), self.channel)
                    self.listening.add(room_id)
                elif room_id not in self.rooms and room_id in self.listening:
                    await layer.group_discard(typing_group(room_id=room_id), self.channel)
                    self.listening.discard(room_id)
            except REDIS_DOWN as error:
                self.unsynced.add(room_id)
                self.outages.failed(error_text(error))
                return
            except BaseException:
                # Anything else (a bug) is Rounds' to log: the room stays unsynced, so the next round retries it.
                self.unsynced.add(room_id)
                raise
        self.outages.worked()

    async def listener_stop(self) -> None:
        """Every room synced (or the event loop closing): with no room left, the listener stops."""
        if not self.rooms and self.listener is not None:
            listener, self.listener, self.channel = self.listener, None, None
            self.listening.clear()
            listener.cancel()
            await asyncio.wait([listener])  # its layer lets go of the channel as it ends

    # -- pushing lists to the sockets --------------------------------------------------------

    def push_schedule(self, *, state: RoomTyping) -> None:
        state.dirty = True
        if not state.pushing:
            state.pushing = True
            self.task_spawn(self.room_push(state=state))

    async def room_push(self, *, state: RoomTyping) -> None:
        """Send each socket whose list changed its new one, again until no list changed meanwhile."""
        try:
            while state.dirty:
                state.dirty = False
                everyone = tuple(sorted(state.heard))
                texts: dict[tuple[str, ...], str] = {}
                for reader in list(state.readers.values()):
                    await self.reader_push(state=state, reader=reader, everyone=everyone, texts=texts)
        finally:
            state.pushing = False

    async def reader_push(
        self, *, state: RoomTyping, reader: Reader, everyone: tuple[str, ...], texts: dict[tuple[str, ...], str]
    ) -> None:
        if reader.shown is None:
            return  # its joined frame has not gone yet
        users = (
            everyone if reader.username not in everyone else tuple(user for user in everyone if user != reader.username)
        )
        if users == reader.shown:
            return
        reader.shown = users
        if users not in texts:
            texts[users] = frame_encode(frame=typing_frame(slug=state.slug, users=list(users)))
        await reader.send(text_data=texts[users])


registry_get = loop_local(Registry)


class SocketTyping:
    """One socket's part in who is typing in its rooms (the consumer's ``typing``).

    Keeps, in memory, for the socket's life: the rooms whose lists it is sent (as a
    reader in this process's ``Registry``), and its rate of ``typing`` frames. Nothing
    is stored: its user stays listed everywhere at most CHAT_TYPING_TTL after their
    last ``typing``, or until their message, or this socket leaving the room."""

    def __init__(self, *, username: str, channel_name: str, send: Callable[..., Awaitable[None]]):
        self.username, self.channel_name = username, channel_name
        self.send = send  # the consumer's: a text frame to the page
        self.rooms: set[int] = set()  # rooms whose lists this socket gets
        # An honest page sends one every 2 s; the burst covers switching rooms.
        self.bucket = TokenBucket(rate=settings.CHAT_TYPING_RATE, burst=settings.CHAT_TYPING_BURST)

    async def enter(self, *, room: Room) -> None:
        """Before the room's joined frame: this socket is sent the room's list from then on."""
        self.rooms.add(room.pk)
        await registry_get().reader_add(room=room, channel=self.channel_name, username=self.username, send=self.send)

    async def show(self, *, room: Room) -> None:
        """After the room's joined frame: the list, if anyone is typing."""
        await registry_get().reader_show(room_id=room.pk, channel=self.channel_name)

    async def exit(self, *, room: Room) -> None:
        if room.pk in self.rooms:
            self.rooms.discard(room.pk)
            await registry_get().reader_remove(room_id=room.pk, channel=self.channel_name)

    def abandon(self) -> None:
        """The consumer ended without exit() (it crashed): out of every room, by tasks that run
        without it. Its user must not stay listed until the TTL, nor its socket be sent lists."""
        registry = registry_get()
        for room_id in self.rooms:
            registry.task_spawn(registry.reader_remove(room_id=room_id, channel=self.channel_name))

    async def note(self, *, room: Room) -> None:
        """The page says its user is typing in the room."""
        if not self.bucket.take():
            raise ClientError("rate_limited", "Too many typing notices; one every 2 seconds is enough.")
        site_inc(TYPING_NOTICES)
        await registry_get().typing_note(room_id=room.pk, channel=self.channel_name, username=self.username)

    async def end(self, *, room: Room) -> None:
        """The user's message was stored: they are no longer typing it."""
        await registry_get().typing_end(room_id=room.pk, username=self.username)
