"""Whether each socket's session is still a login, and closing (4401) those whose is not.

A socket is logged in once, at its handshake, by the session cookie
(AuthMiddlewareStack); Django checks a session on every HTTP request, but a
socket makes none. So a session that ends must reach its sockets:

- **Logout** (``rooms/receivers.py``) closes the sockets of that session, the
  group ``session-<hash of the key>``, in every process, at once.
- **Every heartbeat** (CHAT_PRESENCE_HEARTBEAT), one task per process (per running
  event loop, like presence's registry) checks the session keys of all its
  sockets in two queries (``selectors.sessions_logged_in``): still stored, not
  expired, the user still active, the session's auth hash still the user's
  password's. The sockets of every session that is not get closed. This covers
  what sends no signal: an expired or deleted session, a ``QuerySet.update()``.
- **At once** when a user is saved or deleted (``rooms/receivers.py``): the
  user's group is told, and each process holding their sockets re-checks now.
- **Every write** (send, join, leave) checks its own session first, so a socket
  whose session ended stores nothing in the moment before it is closed.
"""

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from realtime_common.loops import loop_local
from realtime_common.outages import OutageLog

from .selectors import session_logged_in, sessions_logged_in
from .wire import session_group, user_group

logger = logging.getLogger(__name__)

# The session is no login any more (logged out in this browser, expired, password
# changed, deactivated), or there was none: final, the page must not reconnect.
CLOSE_LOGGED_OUT = 4401


class SessionWatch:
    """This process's sockets by session key, and the task that re-checks their sessions."""

    def __init__(self):
        self.channels: dict[str, set[str]] = {}  # session key -> channel names of its sockets here
        self.task: asyncio.Task | None = None
        self.wake: asyncio.Future | None = None  # the task's wait for the next heartbeat, cut short
        self.soon = False  # check again as soon as the check under way (if any) is done
        self.outages = OutageLog(
            logger=logger,
            failing="sessions: a re-check failed (%s); retrying every heartbeat",
            working="sessions: re-checks work again",
        )

    def socket_add(self, *, session_key: str, channel_name: str) -> None:
        self.channels.setdefault(session_key, set()).add(channel_name)
        if self.task is None:
            self.task = asyncio.create_task(self.watch_run())

    def socket_discard(self, *, session_key: str, channel_name: str) -> None:
        channels = self.channels.get(session_key, set())
        channels.discard(channel_name)
        if not channels:
            self.channels.pop(session_key, None)
        if not self.channels:
            self.wake_up()  # the task ends now, not a heartbeat later

    def check_soon(self) -> None:
        self.soon = True
        self.wake_up()

    def wake_up(self) -> None:
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    async def watch_run(self) -> None:
        try:
            while self.channels:
                if not self.soon:
                    # A future per wait, not an Event: nothing here outlives the task
                    # and keeps its (a test's) event loop alive.
                    self.wake = asyncio.get_running_loop().create_future()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake, settings.CHAT_PRESENCE_HEARTBEAT)
                    self.wake = None
                self.soon = False
                if self.channels:
                    await self.sessions_check()
        finally:
            # Synchronously, so that a socket added from now on starts a task of its own.
            self.task, self.wake = None, None

    async def sessions_check(self) -> None:
        keys = list(self.channels)
        try:
            alive = await database_sync_to_async(sessions_logged_in)(keys=keys)
            # To each socket's own channel, not the session's group: a Redis that
            # restarted forgot its groups, but each socket still reads its channel.
            # Sessions rarely end, so this is rarely more than a few sends.
            for key in set(keys) - alive:
                for channel_name in list(self.channels.get(key, ())):
                    await get_channel_layer().send(channel_name, {"type": "session.ended"})
        except Exception as error:  # noqa: BLE001 - whatever failed, the next heartbeat tries again
            self.outages.failed(repr(error))
        else:
            self.outages.worked()


session_watch_get = loop_local(SessionWatch)


class SessionMixin:
    """For a consumer: holds its socket to the login of its handshake, and closes it
    with CLOSE_LOGGED_OUT as soon as that session is no login any more."""

    session_key: str | None = None  # set once the handshake brought a login

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A consumer that crashed never ran disconnect(): no more re-checks for it.
            self.session_unwatch()

    async def session_attach(self) -> bool:
        """At connect: joins the socket to its user's and session's groups and to this
        process's re-checks. Without a login, accepts and closes the socket (4401), and
        answers False: a browser cannot read why a handshake was refused (it sees 1006,
        and retries), but a close code it can, and 4400-4499 are final."""
        if not self.scope["user"].is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_LOGGED_OUT)
            return False
        self.session_key = self.scope["session"].session_key
        await self.channel_layer.group_add(user_group(user_id=self.scope["user"].pk), self.channel_name)
        await self.channel_layer.group_add(session_group(session_key=self.session_key), self.channel_name)
        session_watch_get().socket_add(session_key=self.session_key, channel_name=self.channel_name)
        return True

    async def session_detach(self) -> None:
        if self.session_key is None:
            return
        self.session_unwatch()
        await self.channel_layer.group_discard(session_group(session_key=self.session_key), self.channel_name)
        await self.channel_layer.group_discard(user_group(user_id=self.scope["user"].pk), self.channel_name)

    def session_unwatch(self) -> None:
        if self.session_key is not None:
            session_watch_get().socket_discard(session_key=self.session_key, channel_name=self.channel_name)

    async def session_confirm(self) -> bool:
        """Before a write: True while the session is a login (two queries); else closes the socket."""
        if await database_sync_to_async(session_logged_in)(session_key=self.session_key):
            return True
        await self.session_close()
        return False

    async def session_close(self) -> None:
        self.session_unwatch()  # a closing socket needs no more re-checks
        await self.close(code=CLOSE_LOGGED_OUT)

    async def session_ended(self, message):
        """Logged out in this browser, or found no login by a re-check."""
        await self.session_close()

    async def user_sessions_changed(self, message):
        """The user was saved or deleted: this process re-checks its sessions now, once for all its sockets."""
        session_watch_get().check_soon()
