"""System checks (``manage.py check``; also before ``migrate`` and the other commands)."""

from django.conf import settings
from django.core.checks import Error, Tags, register

from realtime_common.origins import ANY_ORIGIN


@register(Tags.security)
def wildcard_check(*, app_configs=None, **kwargs) -> list[Error]:
    """``*`` in ALLOWED_HOSTS or WEBSOCKET_ORIGINS turns the Host or the Origin check
    off: any site's page could use a visitor's session over a socket. Fine while
    developing, refused in production (the ASGI builder refuses to start with it too)."""
    if settings.DEBUG:
        return []
    return [
        Error(
            f"{name} contains '*' while DEBUG is off: every host or origin would be accepted.",
            hint=f"List the exact values in DJANGO_{name}.",
            id="realtime_common.E001",
        )
        for name in ("ALLOWED_HOSTS", "WEBSOCKET_ORIGINS")
        if ANY_ORIGIN in getattr(settings, name)
    ]
