"""Which pages may open a site's WebSockets: exact origins (scheme, host and port).

A browser sends the page's origin in the handshake's ``Origin`` header, and it is the
only defence against another site's page opening a socket with the visitor's cookies
(cross-site WebSocket hijacking). Channels' ``AllowedHostsOriginValidator`` compares
host names only, so ``https://`` pages, other ports (other sites on the same host) and
other schemes all got through; here the whole origin must match.

Imported by the settings: nothing here may need configured settings.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# Dropped when given, so that http://host and http://host:80 are one origin.
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Any origin: for DEBUG only (realtime_common.checks refuses it otherwise).
ANY_ORIGIN = "*"


def origin_normalise(*, origin: str) -> str:
    """``scheme://host[:port]``, lowercased, without the scheme's default port.

    Raises ValueError for anything that is not an origin: ``null`` (what sandboxed
    and file pages send), a path, a query, credentials, no host, a bad port.
    """
    parts = urlsplit(origin)
    # urlsplit drops an empty "?" or "#", so look for them in the text too.
    extras = parts.path or parts.query or parts.fragment or "?" in origin or "#" in origin
    if not parts.scheme or not parts.hostname or extras or "@" in parts.netloc:
        raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
    port = parts.port  # raises ValueError unless a number from 0 to 65535
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


def websocket_origins(*, listed: list[str], hosts: list[str], ports: list[str], secure: bool) -> list[str]:
    """The normalised origins whose pages may open the site's WebSockets.

    ``listed`` (DJANGO_WEBSOCKET_ORIGINS) when given, as is. Otherwise every allowed
    host on every public port (DJANGO_PUBLIC_PORTS: where browsers reach the site,
    which behind a proxy is not where daphne listens; none: the scheme's default
    port), over https when ``secure``. ``*`` (in either list) stays ``*``.
    """
    if listed:
        candidates, source = listed, "DJANGO_WEBSOCKET_ORIGINS"
    else:
        source = "DJANGO_ALLOWED_HOSTS / DJANGO_PUBLIC_PORTS"
        patterns = [host for host in hosts if host.startswith(".")]
        if patterns:
            # Django's ".example.com" means any subdomain: no exact origin follows from it.
            raise ImproperlyConfigured(
                f"DJANGO_ALLOWED_HOSTS has the pattern {patterns[0]!r}: list the exact origins "
                "of the site's pages in DJANGO_WEBSOCKET_ORIGINS (e.g. https://www.example.com)."
            )
        scheme = "https" if secure else "http"
        candidates = [
            ANY_ORIGIN if host == ANY_ORIGIN else f"{scheme}://{host}{f':{port}' if port else ''}"
            for host in hosts
            for port in ports or [""]
        ]
    try:
        normalised = [ANY_ORIGIN if origin == ANY_ORIGIN else origin_normalise(origin=origin) for origin in candidates]
    except ValueError as error:
        raise ImproperlyConfigured(f"{source}: {error}") from None
    return list(dict.fromkeys(normalised))


def socket_origin(*, configured: str, secure: bool) -> str:
    """Where the site's pages open its sockets when that is not their own origin
    (DJANGO_SOCKET_ORIGIN, e.g. ``wss://ws.example.com``), normalised; "" when not set.

    A ``ws://`` origin for a site served over https is refused: browsers block a
    plain socket from a secure page.
    """
    if not configured:
        return ""
    try:
        origin = origin_normalise(origin=configured)
    except ValueError as error:
        raise ImproperlyConfigured(f"DJANGO_SOCKET_ORIGIN: {error}") from None
    scheme = origin.partition(":")[0]
    if scheme not in ("ws", "wss"):
        raise ImproperlyConfigured(f"DJANGO_SOCKET_ORIGIN: {configured!r} is not a ws:// or wss:// origin")
    if secure and scheme != "wss":
        raise ImproperlyConfigured(
            f"DJANGO_SOCKET_ORIGIN: the site is served over https, so {configured!r} must be wss://"
        )
    return origin
