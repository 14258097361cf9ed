import logging

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import OperationalError

from realtime_common.broadcast import database_sync_to_async_sending
from realtime_common.consumers import ClientError, fault_frame
from realtime_common.layers import REDIS_DOWN, error_text
from realtime_common.outages import OutageLog
from realtime_common.streams import StreamConsumer

from .models import Message, Room
from .presence import SocketPresence
from .selectors import message_frame_stored, room_get, room_history, room_may_join, session_rooms
from .services import (
    ClientIdTaken,
    MessageRateLimited,
    SessionEnded,
    membership_rate_allow,
    message_send,
    session_rooms_update,
)
from .sessions import CLOSE_LOGGED_OUT, SocketSession
from .typing import SocketTyping
from .wire import Command, command_parse, joined_frame, left_frame, room_group, since_parse

logger = logging.getLogger(__name__)

# A deleted room's leave on every socket in it: while Redis or the database fails, one
# warning for all of them, not one per socket.
DELETED_ROOM_LEAVES = OutageLog(
    logger=logger,
    failing="chat: a deleted room was left, but not cleaned up (%s): a group membership left behind "
    "expires, a slug left in a session is skipped while no room has it",
    working="chat: deleted rooms are cleaned up again, after {failures} failures",
)


class ChatConsumer(StreamConsumer):
    """One tab's socket: the rooms it joined, their messages (each room a stream: in seq
    order, none missed, none twice), who is in them and who is typing; closed (4401) once
    its session is no login.

    Three pieces, each made at connect, each saying what it keeps, where and for how long:
    ``self.session`` (sessions.py: the login), ``self.presence`` (presence.py: who is in
    the rooms), ``self.typing`` (typing.py: who is typing). This class alone calls them,
    in the order of the one life cycle below. The socket's group messages come to this class
    (a presence change, a session ended, a room deleted, the layer reconnected), but for the
    stream events, which StreamConsumer (realtime_common.streams) sends in seq order; other
    processes' typing goes to the typing Registry's listener channel, not to the sockets.

    - **connect**: no login, no socket (4401); else ``session.attach``, accept, then
      each room the session keeps is entered, as if joined.
    - **enter(room)**, on join or resync, whole or not at all (a failure undoes it by exit):
      1. the room's stream group: an event committed from now on reaches the socket;
      2. ``presence.enter``, which answers the members: a change made after it reaches the socket;
      3. ``typing.enter``: the room's list reaches the socket from now on;
      4. the history, read after 1: an event committed in between comes twice, and its seq drops
         the copy, rather than not at all;
      5. the ``joined`` frame, which has the page forget the room's lists;
      6. ``typing.show``: who types, if anyone, after the frame that made the page forget.
    - **exit(room)**, on leave, disconnect or deletion: the same undone, in reverse.
    - **disconnect**: exit every room (the session keeps them, for the next socket), then ``session.detach``.
    - **clean-up**, when the consumer ends however (``__call__``): a consumer that crashed never ran
      disconnect, so each piece lets go of what it keeps outside the socket, without awaiting:
      ``typing.abandon``, ``presence.abandon``, ``session.unwatch``.
    """

    # Made at connect, once the handshake brought a login.
    session: SocketSession | None = None
    presence: SocketPresence
    typing: SocketTyping

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The session is made last at connect: with it, the other two are there too.
            if self.session is not None:
                self.typing.abandon()
                self.presence.abandon()
                self.session.unwatch()

    async def connect(self):
        self.user = self.scope["user"]
        if not self.user.is_authenticated:
            # Accepted, then closed: a browser cannot read why a handshake was refused (it
            # sees 1006, and retries), but a close code it can, and 4400-4499 are final.
            await self.accept()
            await self.close(code=CLOSE_LOGGED_OUT)
            return
        username = self.user.get_username()
        self.presence = SocketPresence(username=username, send=self.send)
        self.typing = SocketTyping(username=username, channel_name=self.channel_name, send=self.send)
        # Last: the clean-up takes a session as the sign that all three were made.
        self.session = SocketSession(
            user_id=self.user.pk, session_key=self.scope["session"].session_key, channel_name=self.channel_name
        )
        self.rooms: dict[str, Room] = {}  # joined on this socket, by slug
        await self.session.attach(layer=self.channel_layer)
        await self.accept()
        # Back into the rooms of the session, unasked: a reload or a new tab carries on.
        since = since_parse(self.scope["query_string"])
        for room in await database_sync_to_async(session_rooms)(session=self.scope["session"], user=self.user):
            try:
                await self.enter(room, since=since.get(room.slug))
            except Exception as error:
                if (frame := fault_frame(error)) is None:
                    raise
                # Redis or the database failed: this room is not entered, but the socket
                # stays open for the others, and the session keeps the room, so the next
                # connect enters it. No frame of the page's asked for it: name the room.
                await self.send_json({**frame, "room": room.slug})

    async def disconnect(self, code):
        if self.session is None:
            return
        for room in list(self.rooms.values()):
            await self.exit(room)  # the session keeps them, for the next socket
        await self.session.detach(layer=self.channel_layer)

    async def receive_json(self, content, **kwargs):
        command = command_parse(content)
        if command.name != "join" and command.room not in self.rooms:
            raise ClientError("not_joined", f"Join {command.room!r} first.", client_id=command.client_id)
        if command.name in ("join", "leave") and not await sync_to_async(membership_rate_allow)(user_id=self.user.pk):
            # Each join and leave writes the session: a page must not make that a flood of writes.
            raise ClientError("rate_limited", "Too many joins and leaves; wait a moment.")
        if command.name == "join":
            await self.join(command)
        elif command.name == "leave":
            await self.leave(self.rooms[command.room])
        elif command.name == "typing":
            await self.typing.note(room=self.rooms[command.room])
        elif command.name == "members":
            await self.presence.page_send(room=self.rooms[command.room], after=command.after)
        else:
            await self.say(self.rooms[command.room], command)

    async def join(self, command: Command):
        room = await database_sync_to_async(room_get)(slug=command.room)
        if room is None:
            raise ClientError("room_not_found", f"There is no room {command.room!r}.")
        if not room_may_join(room=room, user=self.user):
            raise ClientError("forbidden", "Only staff may join this room.")
        if not await database_sync_to_async(session_rooms_update)(session_key=self.session.session_key, join=room.slug):
            await self.session_close()
        else:
            await self.enter(room, since=command.since)

    async def leave(self, room: Room):
        if not await database_sync_to_async(session_rooms_update)(
            session_key=self.session.session_key, leave=room.slug
        ):
            await self.session_close()
            return
        await self.exit(room)
        await self.send_json(left_frame(room=room))

    async def say(self, room: Room, command: Command):
        """Store the message, once per client_id (services.message_send). Every refusal, a fault of
        the database or Redis included, names the message (its client_id): the page gives it back."""
        try:
            message, created = await database_sync_to_async_sending(
                message_send,
                session_key=self.session.session_key,
                session_trusted=self.session.trust_check(),
                room=room,
                user=self.user,
                text=command.text,
                client_id=command.client_id,
            )
        except SessionEnded:
            await self.session_close()
            return
        except MessageRateLimited as error:
            raise ClientError(
                "rate_limited", "Too many messages; wait a moment.", client_id=command.client_id
            ) from error
        except ClientIdTaken as error:
            raise ClientError(
                "invalid_client_id", "This client_id names another message: use a new one.", client_id=command.client_id
            ) from error
        except Exception as error:
            if (frame := fault_frame(error)) is None:
                raise  # a ClientError, or a bug
            raise ClientError(frame["code"], frame["detail"], client_id=command.client_id) from error
        if created:
            # Reaches every socket in the room, this one too, once committed.
            await self.typing.end(room=room)
        else:
            # A resend: to this socket alone, the page has the message or gets it now.
            await self.message_resend(room=room, message=message)

    async def message_resend(self, *, room: Room, message: Message):
        stream = room_group(room_id=room.pk)
        frame = await database_sync_to_async(message_frame_stored)(message=message)
        if frame["seq"] > self.stream_seqs[stream]:
            # Still on its way through the room's group: send the page every event it lacks, in order.
            await self.stream_catch_up(stream)
        else:
            # Sent already (the page dedups it by seq) or older than the room keeps (seq 0).
            await self.send_json(frame)

    async def enter(self, room: Room, *, since: int | None):
        """Steps 1 to 6 of the life cycle (the class's docstring), in that order.

        Entered whole or not at all: when Redis or the database fails midway, exit() undoes
        what was done, rather than leave the user listed in a room whose joined frame never
        came. A room entered already (joined again, a resync) keeps its state: nothing is undone."""
        stream = room_group(room_id=room.pk)
        entering = room.slug not in self.rooms
        self.rooms[room.slug] = room
        try:
            await self.channel_layer.group_add(stream, self.channel_name)  # 1
            members = await self.presence.enter(room=room)  # 2
            await self.typing.enter(room=room)  # 3
            history = await database_sync_to_async(room_history)(room=room, since=since)  # 4
        except Exception:
            if entering:
                await self.exit(room)
            raise
        self.stream_seqs[stream] = history.seq
        frame = joined_frame(
            room=room, history=history.frames, members=members.names, count=members.count, more=history.more
        )
        await self.send_json(frame)  # 5
        await self.typing.show(room=room)  # 6

    async def exit(self, room: Room):
        del self.rooms[room.slug]
        self.stream_seqs.pop(room_group(room_id=room.pk), None)
        await self.typing.exit(room=room)
        await self.presence.exit(room=room)
        await self.channel_layer.group_discard(room_group(room_id=room.pk), self.channel_name)

    def stream_room(self, stream: str) -> Room | None:
        """The room of this socket whose stream that is; None once the socket left it."""
        return next((room for room in self.rooms.values() if room_group(room_id=room.pk) == stream), None)

    async def stream_resync(self, stream: str) -> None:
        # More was missed than the room keeps: the room's newest messages again,
        # as a joined frame whose "more" tells the page to replace what it shows.
        if (room := self.stream_room(stream)) is not None:
            await self.enter(room, since=None)

    async def stream_deleted(self, message):
        # The room was deleted (rooms/receivers.py). Not a resync, whose joined frame
        # would show it again, empty: a leave, which answers "left", which has the page
        # take the room away with its messages, and takes the slug out of the session
        # (a room made later with that slug is not joined unasked). A session with no
        # socket open keeps the slug, which session_rooms skips: no room has it.
        if (room := self.stream_room(message["stream"])) is None:
            return
        # A group message's handler, not a page's frame: what raises here would end the
        # socket (1011), in all its rooms. So the page is told in any case, and what Redis
        # or the database fails to clean up is left behind: the room's group membership
        # expires (nothing is sent to a deleted room's group again), and a slug left in
        # the session is harmless until a room takes it again.
        whole = True  # nothing left behind
        try:
            await self.exit(room)  # only its last step needs Redis: the room's group_discard
        except REDIS_DOWN as error:
            whole = False
            DELETED_ROOM_LEAVES.failed(error_text(error))
        await self.send_json(left_frame(room=room))
        try:
            logged_in = await database_sync_to_async(session_rooms_update)(
                session_key=self.session.session_key, leave=room.slug
            )
        except OperationalError as error:
            DELETED_ROOM_LEAVES.failed(str(error))
            return
        if whole:
            DELETED_ROOM_LEAVES.worked()
        if not logged_in:
            await self.session_close()

    async def session_close(self) -> None:
        self.session.end()
        await self.close(code=CLOSE_LOGGED_OUT)

    async def session_ended(self, message):
        """Logged out in this browser, or found no login by a re-check (sessions.py)."""
        await self.session_close()

    async def user_sessions_changed(self, message):
        """The user was saved or deleted: this process re-checks its sessions now, once for all its sockets."""
        self.session.doubt()

    async def presence_changed(self, message):
        await self.presence.changed(message)

    async def layer_reconnected(self, message):
        await super().layer_reconnected(message)  # the rooms' messages, from the database
        await self.presence.reconnected()
