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

**Cheap on the per-frame path.** A frame is counted in plain numbers of its socket's
own, added up only when Prometheus scrapes (``SocketCounts``); a socket's other series
are looked up once, when it starts (``SocketMeter``), and the site's own ones once per
process (``site_child``). With DJANGO_METRICS=0 nothing is counted: a socket is not even
wrapped, and the other calls return after one check.
"""

import functools
import ipaddress
import itertools
import logging
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Iterator
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
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
# realtime_frames_received, realtime_frames_sent and realtime_event_delay_seconds: SocketCounts, below.


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
        # A few hundred series, and a few numbers per open socket: a millisecond or two, not worth a thread.
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


def group_send_counted(*, sent: bool, count: int = 1) -> None:
    if settings.METRICS_ENABLED:
        site_child(GROUP_SENDS, settings.SITE_NAME, "sent" if sent else "failed").inc(count)


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


class FrameCounts:
    """What a socket counts per frame, in plain numbers: frames received and sent, and its
    events' delays (per bucket of DELAY_BUCKETS, the last one +Inf, and their sum)."""

    __slots__ = ("received", "sent", "delays", "delay_sum")

    def __init__(self):
        self.received = self.sent = 0
        self.delays = [0] * (len(DELAY_BUCKETS) + 1)
        self.delay_sum = 0.0

    def add(self, other: "FrameCounts") -> None:
        self.received += other.received
        self.sent += other.sent
        self.delays = [mine + theirs for mine, theirs in zip(self.delays, other.delays, strict=True)]
        self.delay_sum += other.delay_sum


class SocketCounts(Collector):
    """realtime_frames_received, realtime_frames_sent and realtime_event_delay_seconds: the
    sum, when Prometheus scrapes, of the open sockets' FrameCounts and of the ended ones'.

    Not the client's Counter and Histogram: each takes a lock per call, and observe() walks
    the buckets. Measured for issue 18 (the liveblog's fan-out, ~80 µs of server CPU a frame),
    a stream event cost 1.0 µs of counting: 0.33 µs in a ``send`` counted by a Counter, 0.68 µs
    in event_sent's Histogram.observe(). In plain numbers of the socket's own (``+= 1``, a
    bisect of the buckets) it costs 0.25 µs: 0.09 and 0.16. A scrape adds them up: 0.8 ms
    for 1,000 open sockets.

    A socket's numbers are written only by its event loop. They are added into the totals
    of its site and consumer once, when it ends, under the same lock as a scrape's reading:
    a scrape sees each socket either open or ended, so it never counts one twice nor misses one.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.open: set[SocketMeter] = set()
        self.ended: dict[tuple[str, str], FrameCounts] = {}  # by (site, consumer)

    def socket_started(self, meter: "SocketMeter") -> None:
        with self.lock:
            self.open.add(meter)
            # Its series at 0 from its first socket on, as the client's Counter would show them.
            self.ended.setdefault((meter.site, meter.consumer), FrameCounts())

    def socket_ended(self, meter: "SocketMeter") -> None:
        """Idempotent: a consumer that raised is told it ended twice."""
        with self.lock:
            if meter in self.open:
                self.open.remove(meter)
                self.ended[meter.site, meter.consumer].add(meter.counts)

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        with self.lock:
            # Into copies: the open sockets' counts are added to these for this scrape only, while
            # self.ended keeps the ended sockets' alone.
            totals = {key: FrameCounts() for key in self.ended}
            for key, counts in self.ended.items():
                totals[key].add(counts)
            for meter in self.open:
                totals[meter.site, meter.consumer].add(meter.counts)
        received = CounterMetricFamily(
            "realtime_frames_received", "Frames received from pages.", labels=["site", "consumer"]
        )
        sent = CounterMetricFamily(
            "realtime_frames_sent", "Frames sent to pages, relayed ones included.", labels=["site", "consumer"]
        )
        by_site: dict[str, FrameCounts] = {}
        for (site, consumer), counts in totals.items():
            received.add_metric([site, consumer], counts.received)
            sent.add_metric([site, consumer], counts.sent)
            by_site.setdefault(site, FrameCounts()).add(counts)
        delay = HistogramMetricFamily(
            "realtime_event_delay_seconds",
            "From a stream event's commit to this process sending it to a page, once per page; events caught up from "
            "the database (a reconnect, a gap) are not observed.",
            labels=["site"],
        )
        bounds = [floatToGoString(bound) for bound in DELAY_BUCKETS] + ["+Inf"]
        for site, counts in by_site.items():
            cumulative = list(itertools.accumulate(counts.delays))
            delay.add_metric([site], list(zip(bounds, cumulative, strict=True)), sum_value=counts.delay_sum)
        yield from (received, sent, delay)


SOCKET_COUNTS = SocketCounts()
REGISTRY.register(SOCKET_COUNTS)


class SocketMeter:
    """One socket's metrics, its series looked up once when it starts: the consumer
    bases count what passes through its ASGI ``receive`` and ``send``
    (``receive_counted``, ``send_counted``), whichever code sends. Its frames and
    delays are counted in its own FrameCounts (see SocketCounts: why)."""

    def __init__(self, *, consumer: str):
        self.on = settings.METRICS_ENABLED
        self.site, self.consumer = settings.SITE_NAME, consumer
        self.accepted = self.refused = self.closed = False
        self.close_sent: int | None = None  # the code the server closed with
        if self.on:
            self.sockets_open = SOCKETS_OPEN.labels(self.site, consumer)
            self.counts = FrameCounts()
            SOCKET_COUNTS.socket_started(self)

    def receive_counted(self, receive):
        counts = self.counts

        async def counted():
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                counts.received += 1
            elif kind == "websocket.disconnect":
                self.close_count(code=message.get("code"))
            return message

        return counted

    def send_counted(self, send):
        """``send``, counting each message as it is handed over: a plain function that returns
        ``send``'s own awaitable. Every frame sent passes here, and a coroutine of its own per
        frame (made, awaited, freed) cost ~500-900 of the ~4,000 CPU instructions that counting
        took per frame (callgrind, issue 18). Call it in the event loop only, where a socket's
        counts are written (SocketCounts)."""
        counts = self.counts

        def counted(message):
            kind = message["type"]
            if kind == "websocket.send":
                counts.sent += 1
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
            return send(message)

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
            SOCKET_COUNTS.socket_ended(self)

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
            delay, counts = time.time() - committed, self.counts
            # The first bucket whose bound is at least the delay, as the client's Histogram counts it.
            counts.delays[bisect_left(DELAY_BUCKETS, delay)] += 1
            counts.delay_sum += delay
