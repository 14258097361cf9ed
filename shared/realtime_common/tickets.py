"""Single-use tickets that log a WebSocket in where the page's cookies do not go.

A site may serve its sockets on an origin of their own (``settings.SOCKET_ORIGIN``, a
socket domain): the browser sends that origin none of the site's cookies, so a socket
there cannot be logged in by its session cookie. The 2016 talk put the session key in the
socket's query string instead; but URLs end up in logs and histories, and a session key
there is a login for whoever reads it, as long as the session lasts. A ticket instead:

- is issued over HTTP, to a logged-in page of the site (a CSRF-protected POST): ``ticket_grant``;
- is a random id, signed (``django.core.signing``, salted with the site's name, as the sites of
  one deployment may share a SECRET_KEY): only signed, not encrypted, so the session key is not
  in it. It stays on the server, in the cache under the id, for TICKET_SECONDS;
- is redeemed once, at the handshake (``ticket_session``, which ``realtime_common.asgi.SocketLogin``
  calls): of the handshakes presenting it, on any process, only the one whose delete removes the
  cache entry gets in (Redis's DEL is atomic). Reused, expired, tampered with, or issued by another
  site: the handshake is refused (HTTP 403);
- gives the socket the very session it was issued from, as a ``SessionStore``; its user is then
  loaded from it as from a cookie's, so the site's session rules (logout, re-checks) hold for
  ticket sockets as for cookie sockets.
"""

import logging
import secrets
from importlib import import_module
from urllib.parse import parse_qs, urlencode

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing
from django.core.cache import cache
from django.db import OperationalError
from django.http import HttpRequest

from realtime_common.layers import REDIS_DOWN, error_text
from realtime_common.metrics import handshake_refused

logger = logging.getLogger(__name__)

# Long enough for a page or a client to open its socket, short enough that a ticket read
# from a log (the URL carries it) is long spent.
TICKET_SECONDS = 30
QUERY_PARAMETER = "ticket"


def ticket_salt() -> str:
    return f"realtime_common.tickets:{settings.SITE_NAME}"


def ticket_cache_key(*, ticket_id: str) -> str:
    return f"ws-ticket:{ticket_id}"


def ticket_issue(*, session: SessionBase) -> str:
    """A ticket to the login held by ``session`` (saved, with a logged-in user)."""
    ticket_id = secrets.token_urlsafe(18)
    entry = {"session_key": session.session_key, "user_id": session[SESSION_KEY]}
    cache.set(ticket_cache_key(ticket_id=ticket_id), entry, timeout=TICKET_SECONDS)
    return signing.dumps(ticket_id, salt=ticket_salt())


def ticket_redeem(*, ticket: str) -> SessionBase | None:
    """The session ``ticket`` was issued from, the first time it is presented within
    TICKET_SECONDS; None for a ticket reused, expired, tampered with or of another site.

    A session that no longer holds the ticket's user (logged out meanwhile) comes back
    empty: the socket gets no login, as a cookie of an ended session gives none.
    """
    try:
        ticket_id = signing.loads(ticket, salt=ticket_salt(), max_age=TICKET_SECONDS)
    except signing.BadSignature:
        return None
    key = ticket_cache_key(ticket_id=ticket_id)
    entry = cache.get(key)
    # Handshakes racing with one ticket may all read the entry; only the one whose delete
    # removed it wins (Django's delete() answers whether it deleted the key).
    if entry is None or not cache.delete(key):
        return None
    session = session_open(session_key=entry["session_key"])
    return session if session.get(SESSION_KEY) == entry["user_id"] else session_open(session_key=None)


def session_open(*, session_key: str | None) -> SessionBase:
    """The site's session stored under ``session_key`` (SESSION_ENGINE's), read on first use;
    a new, empty one for None or a key that is not stored."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def ticket_grant(*, request: HttpRequest, path: str) -> dict:
    """What a logged-in page gets for its socket at ``path``: the ticket, the URL to open
    (on SOCKET_ORIGIN, or else the page's own host), and seconds before it expires."""
    ticket = ticket_issue(session=request.session)
    origin = settings.SOCKET_ORIGIN or f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}"
    url = f"{origin}{path}?{urlencode({QUERY_PARAMETER: ticket})}"
    return {"ticket": ticket, "url": url, "expires_in": TICKET_SECONDS}


def ticket_of(*, query_string: bytes) -> str | None:
    """The handshake's ticket; None without one. ``?ticket=`` (empty) is a ticket, and no good."""
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get(QUERY_PARAMETER)
    return values[0] if values else None


async def ticket_session(*, ticket: str) -> SessionBase | None:
    """The session of the handshake's ``ticket`` (``ticket_redeem``); None, counted, when the
    handshake must be refused: the ticket is no good, or cannot be redeemed now."""
    # The cache and, for the session, the database.
    try:
        session = await database_sync_to_async(ticket_redeem)(ticket=ticket)
    except (OperationalError, *REDIS_DOWN) as error:
        # Refused, not a 500 with a traceback: the page fetches a new one and retries. Counted
        # apart from a bad ticket: an outage is not someone presenting a spent one.
        logger.warning("socket ticket not redeemed: %s", error_text(error))
        handshake_refused(outcome="unavailable")
        return None
    if session is None:
        handshake_refused(outcome="ticket")
    return session
