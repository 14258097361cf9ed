"""Settings of the chat site; everything it shares with the other sites is in realtime_common."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from realtime_common.settings import *  # noqa: F403
from realtime_common.settings import site_settings

globals().update(site_settings(name="chat", app="rooms", base_dir=Path(__file__).resolve().parent.parent))

# The sockets keep the rooms a browser joined in its session, so sessions must
# be stored on the server (in the database), not in signed cookies; and a request
# that saves the session must not undo a socket's join (rooms/session_store.py).
SESSION_ENGINE = "rooms.session_store"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "rooms:index"
LOGOUT_REDIRECT_URL = "login"

# Each process refreshes the presence entries of its users this often (seconds),
# in one pipeline for all its rooms; an entry not refreshed for CHAT_PRESENCE_TTL
# seconds (its process died) expires. A member whose process died is dropped
# within TTL + HEARTBEAT seconds. Each process also re-checks the sessions of its
# sockets this often, in two queries: a socket whose session is no login any more
# (expired, deleted, password changed, user deactivated) is closed within HEARTBEAT.
# A message trusts the latest re-check for up to two HEARTBEATs from its start (rooms/sessions.py):
# a longer HEARTBEAT widens the time a session ended with no word to the process may still send.
CHAT_PRESENCE_HEARTBEAT = 2.0
CHAT_PRESENCE_TTL = 6.0
# A room's presence changes reach the store at most once per this many seconds
# and process (the first at once): a reconnect storm coalesces into few writes.
CHAT_PRESENCE_BATCH = 0.05
# Each user may send this many messages per window of this many seconds, over all their tabs.
CHAT_RATE_LIMIT_MESSAGES = 10
CHAT_RATE_LIMIT_SECONDS = 10
# Each user may join or leave rooms (each a write of the session) this many times
# per window of this many seconds, over all their tabs.
CHAT_JOIN_LIMIT = 20
CHAT_JOIN_SECONDS = 10
# Each user may get this many socket tickets (POST /ws-ticket/, one per socket opened or
# reopened) per window of this many seconds: their sockets' cap (32 per process) reconnecting at once.
CHAT_TICKET_LIMIT = 40
CHAT_TICKET_SECONDS = 10
# A user is listed as typing in a room until this many seconds pass without a
# "typing" from them (pages send one every 2 s at most while their user types),
# their message arrives, or the socket they typed on leaves the room or closes.
CHAT_TYPING_TTL = 5.0
# Each socket may send "typing" this many times a second on average, in bursts of
# CHAT_TYPING_BURST, before it is answered rate_limited: twice an honest page's rate.
CHAT_TYPING_RATE = 1.0
CHAT_TYPING_BURST = 3
# A list of a room's members (in joined, presence and members frames) holds at most this many
# names, the first in sort order, beside the room's count: a room of 2,000 costs each page a
# few KB, not 300 (chat/README.md). Pages ask for the rest, this many at a time.
CHAT_MEMBERS_LISTED = int(os.environ.get("CHAT_MEMBERS_LISTED", "100"))
if CHAT_MEMBERS_LISTED < 1:
    raise ImproperlyConfigured(f"CHAT_MEMBERS_LISTED must be at least 1, not {CHAT_MEMBERS_LISTED}")
