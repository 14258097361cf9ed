"""The ASGI application of a site: plain Django for HTTP, Channels for WebSockets.

Import this only after ``django.core.asgi.get_asgi_application()`` has run:
``channels.auth`` needs the app registry to be ready.
"""

import logging

from channels.auth import get_user
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.http.cookie import parse_cookie
from django.urls import re_path

from realtime_common.checks import wildcard_check
from realtime_common.layers import channel_layer_description
from realtime_common.metrics import MetricsEndpoint, handshake_refused, metrics_init
from realtime_common.origins import ANY_ORIGIN, origin_normalise
from realtime_common.sockets import SocketGuard
from realtime_common.tickets import session_open, ticket_of, ticket_session

logger = logging.getLogger(__name__)

# "Try again later": a standard code, so pages reconnect, with backoff.
CLOSE_TOO_MANY_SOCKETS = 1013


class OriginValidator:
    """Passes a WebSocket handshake on only if it has exactly one Origin header, equal
    after normalising to one of ``origins`` (normalised, as settings.WEBSOCKET_ORIGINS
    is; ``*`` lets everything through); refuses it (HTTP 403) otherwise: no Origin,
    ``null``, or anything else."""

    def __init__(self, application, *, origins: list[str]):
        self.application = application
        self.origins = frozenset(origins)
        self.denier = WebsocketDenier.as_asgi()

    def origin_allowed(self, *, headers: list[tuple[bytes, bytes]]) -> bool:
        if ANY_ORIGIN in self.origins:
            return True
        values = [value for name, value in headers if name == b"origin"]
        if len(values) != 1:
            return False
        try:
            # Any bytes decode as latin-1, HTTP's own header encoding.
            return origin_normalise(origin=values[0].decode("latin-1")) in self.origins
        except ValueError:
            return False

    async def __call__(self, scope, receive, send):
        if self.origin_allowed(headers=scope["headers"]):
            return await self.application(scope, receive, send)
        handshake_refused(outcome="origin")
        return await self.denier(scope, receive, send)


def cookies_of(*, headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The handshake's cookies, as Django's request.COOKIES has them: from its first Cookie
    header, as Channels' CookieMiddleware reads them."""
    for name, value in headers:
        if name == b"cookie":
            return parse_cookie(value.decode("latin-1"))
    return {}


class SocketLogin:
    """Puts in the scope what Channels' AuthMiddlewareStack does: ``cookies``, ``session`` (the
    cookie's) and ``user`` (the session's, or AnonymousUser). A handshake with ``?ticket=`` gets
    the ticket's session in place of the cookie's (realtime_common.tickets), or is refused (HTTP
    403) when the ticket is no good.

    One middleware and one copy of the scope, where AuthMiddlewareStack with the ticket's between
    its layers made five coroutines and four copies, each kept with its lazy session and user
    wrappers for the life of the socket: ~3 KB a socket (docs/scale.md, "Memory"). Channels'
    SessionMiddleware also wraps every send, to save the session on an HTTP response: a socket
    has none, and its frames go out unwrapped here."""

    def __init__(self, application):
        self.application = application
        self.denier = WebsocketDenier.as_asgi()

    async def __call__(self, scope, receive, send):
        cookies = cookies_of(headers=scope["headers"])
        ticket = ticket_of(query_string=scope.get("query_string", b""))
        if ticket is None:
            session = session_open(session_key=cookies.get(settings.SESSION_COOKIE_NAME))
        elif (session := await ticket_session(ticket=ticket)) is None:
            return await self.denier(scope, receive, send)
        scope = {**scope, "cookies": cookies, "session": session}
        if session.session_key is None:
            # No session (the liveblog's readers, mostly): no trip to the ORM's thread, which every
            # handshake and database call of the process queues for.
            scope["user"] = AnonymousUser()
        else:
            # Read in the ORM's thread, now: a socket's user is the one it was opened with.
            scope["user"] = await get_user(scope)
        return await self.application(scope, receive, send)


class ConnectionCaps:
    """Caps the sockets one client address, and one logged-in user, may hold open
    on this process (settings.WEBSOCKETS_PER_IP, WEBSOCKETS_PER_USER). One over the
    cap is accepted and closed at once with 1013 (try again later), which a page
    can read, where a refused handshake would only show it 1006.

    Counted per process, in memory: nothing to clean up after a crash, and no
    round trip per handshake; with N processes behind a balancer a client may
    hold up to N times the cap."""

    def __init__(self, application, *, per_ip: int, per_user: int):
        self.application = application
        self.limits = {"ip": per_ip, "user": per_user}
        self.open: dict[str, int] = {}

    @staticmethod
    def keys_of(scope) -> list[str]:
        keys = [f"ip:{scope['client'][0]}"] if scope.get("client") else []
        # The user SocketLogin loaded, from the session of the socket's cookie or ticket.
        user = scope.get("user")
        if user is not None and user.is_authenticated:
            keys.append(f"user:{user.pk}")
        return keys

    async def __call__(self, scope, receive, send):
        keys = self.keys_of(scope)
        if any(self.open.get(key, 0) >= self.limits[key.partition(":")[0]] for key in keys):
            handshake_refused(outcome="cap")
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_TOO_MANY_SOCKETS})
            return
        for key in keys:
            self.open[key] = self.open.get(key, 0) + 1
        try:
            return await self.application(scope, receive, send)
        finally:
            for key in keys:
                self.open[key] -= 1
                if not self.open[key]:
                    del self.open[key]


class RouteRefusal(WebsocketDenier):
    """The last route: a socket on a path no route takes is refused (HTTP 403) and
    counted, where Channels' URLRouter would raise, with a traceback per stray request."""

    async def connect(self):
        handshake_refused(outcome="route")
        await super().connect()


def asgi_application(*, http, websocket_urlpatterns, channels: dict | None = None) -> ProtocolTypeRouter:
    """``channels`` maps channel names to the consumers ``manage.py runworker <name>`` runs."""
    # daphne runs no system checks: refuse here what `manage.py check` reports as an error.
    if errors := wildcard_check():
        raise ImproperlyConfigured(" ".join(error.msg for error in errors))
    logger.info("Using the %s", channel_layer_description(settings.CHANNEL_LAYERS))
    metrics_init()
    logger.info("WebSocket origins accepted: %s", ", ".join(settings.WEBSOCKET_ORIGINS) or "none")
    if settings.SOCKET_ORIGIN:
        logger.info("Pages open their sockets at %s, each logged in by a ticket", settings.SOCKET_ORIGIN)
    protocols = {
        # GET /metrics is answered before Django, for the allowed networks only (realtime_common.metrics).
        "http": MetricsEndpoint(http),
        # Outermost first: bound what each socket holds, close them all with 1012
        # on shutdown, let consumers close with the RFC's codes (realtime_common.sockets);
        # refuse foreign Origins (cross-site WebSocket hijacking); load the session from
        # the cookie, or from the ticket when the URL has one (realtime_common.tickets),
        # then its user.
        "websocket": SocketGuard(
            OriginValidator(
                SocketLogin(
                    ConnectionCaps(
                        URLRouter([*websocket_urlpatterns, re_path("", RouteRefusal.as_asgi())]),
                        per_ip=settings.WEBSOCKETS_PER_IP,
                        per_user=settings.WEBSOCKETS_PER_USER,
                    )
                ),
                origins=settings.WEBSOCKET_ORIGINS,
            )
        ),
    }
    if channels:
        protocols["channel"] = ChannelNameRouter(channels)
    return ProtocolTypeRouter(protocols)
