"""The echo site: its WebSocket routes behind the sites' own stack (Origin check,
session and user, URL router), built by the same realtime_common.asgi builder."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "echo_site.settings")
# Set Django up before importing anything that touches the app registry (channels.auth).
django_asgi_app = get_asgi_application()

from django.urls import path  # noqa: E402

from echo_site.consumers import EchoConsumer, SizedConsumer  # noqa: E402
from realtime_common.asgi import asgi_application  # noqa: E402

application = asgi_application(
    http=django_asgi_app,
    websocket_urlpatterns=[path("ws/echo/", EchoConsumer.as_asgi()), path("ws/sized/", SizedConsumer.as_asgi())],
)
