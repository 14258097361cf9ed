"""Whether each socket's session is still a login, and closing (4401) those whose is not.

A socket is logged in once, at its handshake, by the session cookie
(AuthMiddlewareStack); Django checks a session on every HTTP request, but a
socket makes none. So a session that ends must reach its sockets:

- **Logout** (``rooms/receivers.py``) closes the sockets of that session, the
  group ``session-<hash of the key>``, in every process, at once.
- **Every heartbeat** (CHAT_PRESENCE_HEARTBEAT), one task per process (per running
  event loop, like presence's registry) checks the session keys of all its
  sockets in two queries (``selectors.sessions_logged_in_until``): still stored, not
  expired, the user still active, the session's auth hash still the user's
  password's. The sockets of every session that is not get closed. This covers
  what sends no signal: an expired or deleted session, a ``QuerySet.update()``.
- **At once** when a user is saved or deleted (``rooms/receivers.py``): the
  user's group is told, and each process holding their sockets re-checks now.
- **Every write** checks its session first, so a socket whose session ended stores
  nothing in the moment before it is closed. A join or leave in the same call as
  its write (services), as it reads the session anyway. A message trusts the latest
  re-check of its process instead (``SessionWatch.session_confirmed``, asked in the
  ORM's thread just before the send's rate check and write): while that re-check
  began under two heartbeats ago, the session has not expired, and nothing heard
  since may have ended it (a socket of that session closed with 4401 here: for
  good; its user saved or deleted: until the next re-check); else it checks too. Those two queries were a third of a message's CPU instructions (callgrind,
  one daphne, 100 users in 10 rooms of 10). What trust leaves open: a session
  ended with no word to this process (``clearsessions``, a ``QuerySet.update()``,
  another login in that browser, a logout or user change whose group message was
  lost or is still on its way) may store messages until two heartbeats after the
  latest re-check that succeeded began; the next one closes its sockets.
"""

import logging
import time
from collections.abc import Callable
from functools import partial

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from realtime_common.loops import Rounds, loop_local
from realtime_common.outages import OutageLog

from .selectors import sessions_logged_in_until
from .wire import session_group, user_group

logger = logging.getLogger(__name__)

# The session is no login any more (logged out in this browser, expired, password
# changed, deactivated), or there was none: final, the page must not reconnect.
CLOSE_LOGGED_OUT = 4401


class SessionWatch(Rounds):
    """This process's sockets by session key, in memory, while they are open; and the
    task that re-checks their sessions every heartbeat, while there are any (``Rounds``)."""

    def __init__(self):
        self.channels: dict[str, set[str]] = {}  # session key -> channel names of its sockets here
        # Session key -> until when a write may trust the latest re-check that found it a login: a
        # time.monotonic() (two heartbeats after the re-check began) and the session's expiry (time.time()).
        self.confirmed: dict[str, tuple[float, float]] = {}
        # Sessions heard of, while a re-check is on, that may have ended: it confirms none of them.
        self.doubted: set[str] = set()
        # Sessions a socket here closed with 4401 (final): none is confirmed again, whatever a re-check
        # reads (a logout is heard before Django deletes the session's row).
        self.ended: set[str] = set()
        super().__init__(
            name="sessions",
            members=self.channels,
            period=lambda: settings.CHAT_PRESENCE_HEARTBEAT,
            round=self.sessions_check,
        )
        self.outages = OutageLog(
            logger=logger,
            failing="sessions: a re-check failed (%s); retrying every heartbeat",
            working="sessions: re-checks work again",
        )

    def socket_add(self, *, session_key: str, channel_name: str) -> None:
        self.channels.setdefault(session_key, set()).add(channel_name)
        self.rounds_start()

    def socket_discard(self, *, session_key: str, channel_name: str) -> None:
        channels = self.channels.get(session_key, set())
        channels.discard(channel_name)
        if not channels:
            self.channels.pop(session_key, None)
            self.confirmed.pop(session_key, None)
            self.ended.discard(session_key)
        if not self.channels:
            self.rounds_wake()  # the task ends now, not a heartbeat later

    def session_confirmed(self, *, session_key: str) -> bool:
        """Whether the latest re-check found the session a login, began under two heartbeats ago,
        the session has not expired since, nothing heard since may have ended it (``session_doubt``),
        and no socket of it here was closed as logged out (``session_end``). Callable from any thread:
        the ORM's asks it just before a message's rate check and write."""
        trusted_until, expiry = self.confirmed.get(session_key, (0.0, 0.0))
        return time.monotonic() < trusted_until and time.time() < expiry and session_key not in self.ended

    def session_doubt(self, *, session_key: str) -> None:
        """The session may have ended (its user was saved or deleted): writes check it themselves
        until a re-check that began after this confirms it."""
        self.doubted.add(session_key)
        self.confirmed.pop(session_key, None)

    def session_end(self, *, session_key: str) -> None:
        """A socket of the session closed as logged out: no write of it here is trusted again."""
        self.ended.add(session_key)
        self.session_doubt(session_key=session_key)

    async def sessions_check(self) -> None:
        keys = list(self.channels)
        self.doubted = set()
        trusted_until = time.monotonic() + 2 * settings.CHAT_PRESENCE_HEARTBEAT
        try:
            logged_in = await database_sync_to_async(sessions_logged_in_until)(keys=keys)
            self.confirmed = {
                key: (trusted_until, expiry.timestamp())
                for key, expiry in logged_in.items()
                if key in self.channels and key not in self.doubted and key not in self.ended
            }
            alive = set(logged_in)
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


class SocketSession:
    """One socket's hold on the login of its handshake (the consumer's ``session``).

    Keeps, for the socket's life: its session key (in memory); its channel in its
    user's and its session's groups (in the channel layer: Redis, or process memory);
    and its place in this process's ``SessionWatch`` (in memory), which re-checks the
    session every heartbeat. The consumer closes it (CLOSE_LOGGED_OUT) on ``session.ended``."""

    def __init__(self, *, user_id: int, session_key: str, channel_name: str):
        self.user_id, self.session_key, self.channel_name = user_id, session_key, channel_name

    async def attach(self, *, layer) -> None:
        """At connect: the socket hears of its user's and session's changes, and is re-checked."""
        await layer.group_add(user_group(user_id=self.user_id), self.channel_name)
        await layer.group_add(session_group(session_key=self.session_key), self.channel_name)
        session_watch_get().socket_add(session_key=self.session_key, channel_name=self.channel_name)

    async def detach(self, *, layer) -> None:
        self.unwatch()
        await layer.group_discard(session_group(session_key=self.session_key), self.channel_name)
        await layer.group_discard(user_group(user_id=self.user_id), self.channel_name)

    def trust_check(self) -> Callable[[], bool]:
        """Whether a write may trust the process's latest re-check (``SessionWatch.session_confirmed``),
        as a function for the ORM's thread to call just before the write (its rate check first): the
        answer may change while the call waits its turn there."""
        return partial(session_watch_get().session_confirmed, session_key=self.session_key)

    def unwatch(self) -> None:
        """No more re-checks: the socket is closing (or its consumer crashed, and never ran detach())."""
        session_watch_get().socket_discard(session_key=self.session_key, channel_name=self.channel_name)

    def doubt(self) -> None:
        """The user was saved or deleted: the session is re-checked now, and trusted by no write until then."""
        watch = session_watch_get()
        watch.session_doubt(session_key=self.session_key)
        watch.rounds_wake()

    def end(self) -> None:
        """The login ended: no more re-checks, and the other sockets of the session here trust none."""
        session_watch_get().session_end(session_key=self.session_key)
        self.unwatch()
