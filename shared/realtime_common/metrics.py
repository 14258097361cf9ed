"""What every process tells Prometheus: its sockets, frames, refusals, channel layer and delays.

Counted in memory with the official client (prometheus-client), in its default
registry, which also holds the client's process collector (CPU seconds, resident
memory, open files). Each process is a target of its own: a daphne process serves
``GET /metrics`` (``MetricsEndpoint``), the worker its own port (``metrics_serve``).

**Not public.** ``/metrics`` answers only clients in METRICS_ALLOWED_NETWORKS
(DJANGO_METRICS_ALLOWED_NETWORKS: loopback by default). Any other client, and
every client while metrics are off, gets the site's own 404, as for any unknown
path: nothing tells it the endpoint exists. Behind nginx the client is the one in
X-Forwarded-For (daphne --proxy-headers), so nginx itself refuses ``/metrics``.

**Labels of bounded cardinality only.** ``site`` (SITE_NAME, one per process),
the consumer's class name, a close code, an error code, an outcome; never a room,
a user, a board, an address or a channel: each value of a label is a series that
Prometheus keeps.

**Cheap on the per-frame path.** A socket's series are looked up once, when it
starts (``SocketMeter``), and the site's own ones once per process (``site_child``):
a frame then costs a counter's increment. With DJANGO_METRICS=0 nothing is counted:
a socket is not even wrapped, and the other calls return after one check.
"""

import functools
import ipaddress
import logging
import threading
import time
import weakref
from wsgiref.simple_server import WSGIServer

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import start_http_server as prometheus_http_server

logger = logging.getLogger(__name__)

# Without it every counter and histogram series has a twin, <name>_created (its start time),
# which Prometheus's own counter resets make redundant: half the series, for nothing.
disable_created_metrics()

METRICS_PATH = "/metrics"
# From 1 ms (a page on the same host as Redis) to 10 s (far past the EventDelayHigh alert, at 1 s).
DELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# daphne closes the socket of a consumer that raised with 1011 (internal error); the consumer never hears its close.
CLOSE_CRASHED = 1011
# A consumer cancelled before it heard its close (the server stopping): no close handshake was seen.
CLOSE_ABNORMAL = 1006
# A close frame without a code: what the RFC reports for it.
CLOSE_NO_STATUS = 1005
# A page may close with any code from 3000 to 4999: one the server did not send is counted as this.
OTHER_CODE = "other"

SOCKETS_OPEN = Gauge("realtime_sockets_open", "WebSockets open now, by consumer class.", ["site", "consumer"])
HANDSHAKES = Counter(
    "realtime_handshakes",
    "WebSocket handshakes by outcome: accepted; refused for origin, cap (1013), ticket (bad or spent), unavailable "
    "(the ticket could not be redeemed: Redis or the database failed), route (no route for the path), or by the "
    "consumer itself (refused). consumer is empty when refused before routing.",
    ["site", "consumer", "outcome"],
)
CLOSES = Counter(
    "realtime_closes",
    "Accepted WebSockets closed, by close code, whoever closed first: the code of the page's close frame (1005 "
    "without one, 1006 for a dropped connection, 1011 for a consumer that raised; a code of 3000-4999 the server did "
    "not send is 'other').",
    ["site", "consumer", "code"],
)
FRAMES_RECEIVED = Counter("realtime_frames_received", "Frames received from pages.", ["site", "consumer"])
FRAMES_SENT = Counter("realtime_frames_sent", "Frames sent to pages, relayed ones included.", ["site", "consumer"])
ERROR_FRAMES = Counter("realtime_error_frames", "Error frames sent to pages, by code.", ["site", "consumer", "code"])
GROUP_SENDS = Counter(
    "realtime_group_sends",
    "Group messages sent through the channel layer, by outcome (sent, failed).",
    ["site", "outcome"],
)
LAYER_UP = Gauge(
    "realtime_channel_layer_up",
    "0 while one of this process's pub/sub-layer subscriber connections to Redis is lost, else 1. Only a process "
    "on the pub/sub layer has it, from its first use of that layer; a process that subscribed to nothing holds no "
    "connection and stays 1 while Redis is down; the core layer (and the worker on it) does not set it: "
    'realtime_group_sends_total{outcome="failed"} covers every layer.',
    ["site"],
)
LAYER_RECONNECTS = Counter(
    "realtime_channel_layer_reconnects",
    "Times the pub/sub channel layer connected to a Redis again (every consumer was told layer.reconnected).",
    ["site"],
)
SLOW_READERS_CLOSED = Counter(
    "realtime_slow_readers_closed", "WebSockets closed with 1013 because their page stopped reading.", ["site"]
)
EVENT_DELAY = Histogram(
    "realtime_event_delay_seconds",
    "From a stream event's commit to this process sending it to a page, once per page; events caught up from the "
    "database (a reconnect, a gap) are not observed.",
    ["site"],
    buckets=DELAY_BUCKETS,
)


def networks_parse(networks: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """DJANGO_METRICS_ALLOWED_NETWORKS's CIDRs; refused at startup when one is not a network."""
    try:
        return [ipaddress.ip_network(network) for network in networks]
    except ValueError as error:
        raise ImproperlyConfigured(f"DJANGO_METRICS_ALLOWED_NETWORKS: {error}") from None


def client_allowed(*, client: tuple[str, int] | list | None) -> bool:
    """May this client (the ASGI scope's) read the metrics?"""
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:  # a Unix socket's peer, or no address at all
        return False
    # A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d.
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


# Headers a proxy adds. daphne's --proxy-headers takes the client's address from the first
# X-Forwarded-For, which the client itself may have written ("127.0.0.1"): a request with any
# of these came through a proxy, and Prometheus scrapes directly, so it is never answered.
PROXY_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})


def proxied(*, headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name in PROXY_HEADERS for name, _ in headers)


class MetricsEndpoint:
    """ASGI middleware in front of Django's HTTP application: answers ``GET /metrics``
    to allowed clients, and passes everything else on.

    Outside Django, on purpose: Prometheus finds each process by its IP address and
    scrapes it with that in the Host header, which ALLOWED_HOSTS rightly refuses; and
    a scrape every few seconds needs no session, CSRF or CSP middleware. A client that
    may not read it is passed on to Django, whose answer is its 404 for an unknown path.
    """

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if not (
            scope["path"] == METRICS_PATH
            and scope["method"] == "GET"
            and settings.METRICS_ENABLED
            and not proxied(headers=scope["headers"])
            and client_allowed(client=scope.get("client"))
        ):
            return await self.application(scope, receive, send)
        # A few hundred series: well under a millisecond, not worth a thread.
        body = generate_latest(REGISTRY)
        headers = [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def metrics_serve() -> WSGIServer | None:
    """For a process without an HTTP server (the worker): serve the metrics on
    DJANGO_METRICS_PORT, at DJANGO_METRICS_ADDR, when the port is set, from a thread of
    their own; the server, or None. Any path, any client of that address: bind it where
    only Prometheus reaches (loopback, or compose's network, where the worker publishes no port)."""
    if not settings.METRICS_ENABLED or settings.METRICS_PORT is None:
        return None
    server, _ = prometheus_http_server(settings.METRICS_PORT, addr=settings.METRICS_ADDR)
    logger.info("Metrics at http://%s:%d/metrics", settings.METRICS_ADDR, settings.METRICS_PORT)
    return server


# The handshake outcomes of no consumer yet (refused before routing), pre-created by metrics_init().
REFUSED_BEFORE_ROUTING = ("origin", "cap", "ticket", "unavailable", "route")


@functools.cache
def site_child(metric: Counter | Gauge | Histogram, site: str, *labels: str):
    """The series of ``metric`` for ``site`` (and its other ``labels``), looked up once per process.
    Keyed by the site too, though a process has one: a test that changes SITE_NAME gets its own."""
    return metric.labels(site, *labels)


def metrics_init() -> None:
    """Create the site's rare counters at 0, at startup: a counter's first sample is at 1,
    so increase() and rate(), which need two samples, would miss a process's first event
    (its first slow reader closed, its first reconnect). Idempotent."""
    if not settings.METRICS_ENABLED:
        return
    site = settings.SITE_NAME
    for metric in (SLOW_READERS_CLOSED, LAYER_RECONNECTS):
        site_child(metric, site)
    for outcome in ("sent", "failed"):
        site_child(GROUP_SENDS, site, outcome)
    for outcome in REFUSED_BEFORE_ROUTING:
        site_child(HANDSHAKES, site, "", outcome)


def site_inc(metric: Counter | Gauge, amount: float = 1) -> None:
    """Add to a metric whose only label is the site (a Gauge goes down with a negative amount)."""
    if settings.METRICS_ENABLED:
        site_child(metric, settings.SITE_NAME).inc(amount)


def site_observe(metric: Histogram, value: float) -> None:
    """Observe a value of a histogram whose only label is the site."""
    if settings.METRICS_ENABLED:
        site_child(metric, settings.SITE_NAME).observe(value)


def handshake_refused(*, outcome: str) -> None:
    """A handshake refused before routing (one of REFUSED_BEFORE_ROUTING), so of no consumer yet."""
    if settings.METRICS_ENABLED:
        site_child(HANDSHAKES, settings.SITE_NAME, "", outcome).inc()


def group_send_counted(*, sent: bool) -> None:
    if settings.METRICS_ENABLED:
        site_child(GROUP_SENDS, settings.SITE_NAME, "sent" if sent else "failed").inc()


def slow_reader_closed() -> None:
    site_inc(SLOW_READERS_CLOSED)


# The pub/sub layer's Redis connections (one per Redis and event loop), each with a ``lost``
# attribute; weakly held, so that one forgotten with its event loop is no longer counted.
# The gauge is computed from them whenever it is read: it cannot drift from what they are.
LAYER_CONNECTIONS: "weakref.WeakSet" = weakref.WeakSet()
# Added to by each event loop's thread, read by the scrape's (the worker serves its metrics from a thread).
LAYER_CONNECTIONS_LOCK = threading.Lock()


def channel_layer_up() -> int:
    """1 unless one of the pub/sub layer's connections is lost now: the value of realtime_channel_layer_up."""
    with LAYER_CONNECTIONS_LOCK:
        return 0 if any(connection.lost for connection in LAYER_CONNECTIONS) else 1


def channel_layer_watch(*, connection: object) -> None:
    """Count a Redis connection of the pub/sub layer in realtime_channel_layer_up, as long as it lives."""
    if not settings.METRICS_ENABLED:
        return
    with LAYER_CONNECTIONS_LOCK:
        LAYER_CONNECTIONS.add(connection)
    site_child(LAYER_UP, settings.SITE_NAME).set_function(channel_layer_up)


def channel_layer_reconnected() -> None:
    site_inc(LAYER_RECONNECTS)


class SocketMeter:
    """One socket's metrics, its series looked up once when it starts: the consumer
    bases count what passes through its ASGI ``receive`` and ``send``
    (``receive_counted``, ``send_counted``), whichever code sends."""

    def __init__(self, *, consumer: str):
        self.on = settings.METRICS_ENABLED
        self.site, self.consumer = settings.SITE_NAME, consumer
        self.accepted = self.refused = self.closed = False
        self.close_sent: int | None = None  # the code the server closed with
        if self.on:
            self.sockets_open = SOCKETS_OPEN.labels(self.site, consumer)
            self.received = FRAMES_RECEIVED.labels(self.site, consumer)
            self.sent = FRAMES_SENT.labels(self.site, consumer)
            self.delay = EVENT_DELAY.labels(self.site)

    def receive_counted(self, receive):
        async def counted():
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                self.received.inc()
            elif kind == "websocket.disconnect":
                self.close_count(code=message.get("code"))
            return message

        return counted

    def send_counted(self, send):
        async def counted(message):
            kind = message["type"]
            if kind == "websocket.send":
                self.sent.inc()
            elif kind == "websocket.accept":
                self.accepted = True
                self.sockets_open.inc()
                HANDSHAKES.labels(self.site, self.consumer, "accepted").inc()
            elif kind == "websocket.close":
                if not self.accepted and not self.refused:
                    # Closed before accept(): the handshake is refused (HTTP 403).
                    self.refused = True
                    HANDSHAKES.labels(self.site, self.consumer, "refused").inc()
                self.close_sent = message.get("code", 1000)
            await send(message)

        return counted

    def close_count(self, *, code: int | None) -> None:
        """The socket closed (once per socket, and only for one that was accepted)."""
        if not self.accepted or self.closed:
            return
        self.closed = True
        self.sockets_open.dec()
        code = CLOSE_NO_STATUS if code is None else code
        # The RFC's codes are few; a page chooses any of 3000-4999, so only the server's own are kept.
        label = str(code) if code < 3000 or code == self.close_sent else OTHER_CODE
        CLOSES.labels(self.site, self.consumer, label).inc()

    def ended(self, *, crashed: bool) -> None:
        """The consumer is done: a socket whose close it never heard (it raised, or was cancelled) is counted closed here."""
        if self.on:
            self.close_count(code=CLOSE_CRASHED if crashed else CLOSE_ABNORMAL)

    def error_frame(self, *, code: str) -> None:
        if self.on:
            ERROR_FRAMES.labels(self.site, self.consumer, code).inc()

    def json_sent(self, content) -> None:
        """A JSON frame is going out: counted apart when it is an error frame."""
        if self.on and type(content) is dict and content.get("type") == "error":
            ERROR_FRAMES.labels(self.site, self.consumer, content["code"]).inc()

    def event_sent(self, *, committed: float | None) -> None:
        """A stream event went to the page; ``committed`` is when it was committed (time.time())."""
        if self.on and committed is not None:
            self.delay.observe(time.time() - committed)
