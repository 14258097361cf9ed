"""The ASGI application of a site: plain Django for HTTP, Channels for WebSockets.

Import this only after ``django.core.asgi.get_asgi_application()`` has run:
``channels.auth`` needs the app registry to be ready.
"""

import logging

from channels.auth import AuthMiddlewareStack
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from realtime_common.checks import wildcard_check
from realtime_common.layers import channel_layer_description
from realtime_common.origins import ANY_ORIGIN, origin_normalise

logger = logging.getLogger(__name__)


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
        return await self.denier(scope, receive, send)


def asgi_application(*, http, websocket_urlpatterns, channels: dict | None = None) -> ProtocolTypeRouter:
    """``channels`` maps channel names to the consumers ``manage.py runworker <name>`` runs."""
    # daphne runs no system checks: refuse here what `manage.py check` reports as an error.
    if errors := wildcard_check():
        raise ImproperlyConfigured(" ".join(error.msg for error in errors))
    logger.info("Using the %s", channel_layer_description(settings.CHANNEL_LAYERS))
    logger.info("WebSocket origins accepted: %s", ", ".join(settings.WEBSOCKET_ORIGINS) or "none")
    protocols = {
        "http": http,
        # Outermost first: refuse foreign Origins (cross-site WebSocket
        # hijacking), then load the session and user from the cookie.
        "websocket": OriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), origins=settings.WEBSOCKET_ORIGINS
        ),
    }
    if channels:
        protocols["channel"] = ChannelNameRouter(channels)
    return ProtocolTypeRouter(protocols)
