"""The ASGI application of a site: plain Django for HTTP, Channels for WebSockets.

Import this only after ``django.core.asgi.get_asgi_application()`` has run:
``channels.auth`` needs the app registry to be ready.
"""

import logging

from channels.auth import AuthMiddlewareStack
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings

from realtime_common.layers import channel_layer_description

logger = logging.getLogger(__name__)


def asgi_application(*, http, websocket_urlpatterns, channels: dict | None = None) -> ProtocolTypeRouter:
    """``channels`` maps channel names to the consumers ``manage.py runworker <name>`` runs."""
    logger.info("Using the %s", channel_layer_description(settings.CHANNEL_LAYERS))
    protocols = {
        "http": http,
        # Outermost first: refuse foreign Origins (cross-site WebSocket
        # hijacking), then load the session and user from the cookie.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
    if channels:
        protocols["channel"] = ChannelNameRouter(channels)
    return ProtocolTypeRouter(protocols)
