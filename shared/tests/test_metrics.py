"""realtime_common.metrics: what the consumer bases, the handshake's middlewares, the
channel layer and the streams count, and who may read it at GET /metrics.

The registry is the process's: every test compares a value before and after."""

import asyncio
import contextlib
import gc
import itertools
import threading
import time
import urllib.request
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from autobahn.websocket.protocol import WebSocketProtocol
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.core.asgi import get_asgi_application
from django.db import OperationalError, transaction
from django.urls import path
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from realtime_common import metrics
from realtime_common.asgi import CLOSE_TOO_MANY_SOCKETS, asgi_application
from realtime_common.broadcast import group_send_logged, group_send_on_commit
from realtime_common.consumers import (
    AsyncSafeJsonWebsocketConsumer,
    ClientError,
    SafeJsonWebsocketConsumer,
    SocketMetrics,
    relay_message,
)
from realtime_common.layers import LAYER_RECONNECTED, channel_layers
from realtime_common.metrics import (
    DELAY_BUCKETS,
    OTHER_CODE,
    REFUSED_BEFORE_ROUTING,
    MetricsEndpoint,
    channel_layer_watch,
    metrics_init,
    metrics_serve,
    networks_parse,
)
from realtime_common.sockets import CLOSE_SLOW_READER, SEND_BUFFER_LIMIT, GuardedSend
from realtime_common.testing.servers import RedisServer, free_port
from tests.liveapp.consumers import NoteConsumer
from tests.liveapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

SITE = "shared-tests"
ORIGIN = "https://example.com"  # the test settings' WEBSOCKET_ORIGINS


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"site": SITE, **labels}) or 0.0


def values(*names_and_labels: tuple[str, dict]) -> list[float]:
    return [value(name, **labels) for name, labels in names_and_labels]


# The families the sites define (the client's own process_ and python_ ones aside).
OURS = ("realtime_", "chat_", "sketchpad_")


def ours() -> dict[tuple[str, tuple], float]:
    """Every sample of our families, of every site: (name, labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in REGISTRY.collect()
        if family.name.startswith(OURS)
        for sample in family.samples
    }


async def until(condition, *, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds: what it looks at changes in another task or thread."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


class SyncEcho(SafeJsonWebsocketConsumer):
    groups = ["echo"]

    def connect(self):
        if self.scope["path"].endswith("/refuse"):
            self.close()  # before accept(): the handshake is refused
            return
        self.accept()

    def receive_json(self, content, **kwargs):
        if "close" in content:
            self.close(code=content["close"])
        elif "refuse" in content:
            raise ClientError("not_here", "Refused.")
        elif "crash" in content:
            raise RuntimeError("a bug")
        else:
            self.send_json({"echo": content})


class AsyncEcho(AsyncSafeJsonWebsocketConsumer):
    groups = ["echo"]

    async def connect(self):
        if self.scope["path"].endswith("/refuse"):
            await self.close()
            return
        await self.accept()

    async def receive_json(self, content, **kwargs):
        if "close" in content:
            await self.close(code=content["close"])
        elif "refuse" in content:
            raise ClientError("not_here", "Refused.")
        elif "crash" in content:
            raise RuntimeError("a bug")
        else:
            await self.send_json({"echo": content})


consumers = pytest.mark.parametrize("consumer", [SyncEcho, AsyncEcho])


def counts(consumer: type) -> dict:
    name = consumer.__name__
    return {
        "open": value("realtime_sockets_open", consumer=name),
        "accepted": value("realtime_handshakes_total", consumer=name, outcome="accepted"),
        "refused": value("realtime_handshakes_total", consumer=name, outcome="refused"),
        "received": value("realtime_frames_received_total", consumer=name),
        "sent": value("realtime_frames_sent_total", consumer=name),
    }


def moved(before: dict, after: dict) -> dict:
    return {key: after[key] - before[key] for key in before if after[key] != before[key]}


def closes(consumer: type, code: str) -> float:
    return value("realtime_closes_total", consumer=consumer.__name__, code=code)


async def opened(consumer: type | URLRouter, path: str = "/") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(consumer if isinstance(consumer, URLRouter) else consumer.as_asgi(), path)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@consumers
@pytest.mark.usefixtures("layer")
async def test_a_socket_opened_and_closed_moves_the_gauge_up_and_back(consumer):
    before, closed_before = counts(consumer), closes(consumer, "1000")
    socket = await opened(consumer)
    assert moved(before, counts(consumer)) == {"open": 1, "accepted": 1}
    await socket.disconnect(code=1000)
    assert moved(before, counts(consumer)) == {"accepted": 1}
    assert closes(consumer, "1000") - closed_before == 1


@consumers
@pytest.mark.usefixtures("layer")
async def test_a_consumer_that_raised_is_counted_closed_with_1011(consumer):
    before, crashed_before = counts(consumer), closes(consumer, "1011")
    socket = await opened(consumer)
    await socket.send_json_to({"crash": True})
    with pytest.raises(RuntimeError):
        await socket.wait(timeout=5)
    assert moved(before, counts(consumer)) == {"accepted": 1, "received": 1}
    assert closes(consumer, "1011") - crashed_before == 1


@consumers
@pytest.mark.usefixtures("layer")
async def test_a_handshake_the_consumer_closes_is_counted_refused_and_opens_nothing(consumer):
    before = counts(consumer)
    socket = WebsocketCommunicator(consumer.as_asgi(), "/refuse")
    connected, _ = await socket.connect()
    assert not connected
    await socket.disconnect()
    assert moved(before, counts(consumer)) == {"refused": 1}


@consumers
@pytest.mark.usefixtures("layer")
async def test_closes_count_the_servers_codes_and_the_rfcs_but_not_any_code_a_page_chose(consumer):
    codes = ["4401", "1001", "4999", "other"]
    before = [closes(consumer, code) for code in codes]
    server = await opened(consumer)
    await server.send_json_to({"close": 4401})
    assert await server.receive_output() == {"type": "websocket.close", "code": 4401}
    await server.disconnect(code=4401)  # the page echoes the server's code
    for page_code in (1001, 4999):
        socket = await opened(consumer)
        await socket.disconnect(code=page_code)
    assert [closes(consumer, code) - was for code, was in zip(codes, before, strict=True)] == [1, 1, 0, 1]


@consumers
@pytest.mark.usefixtures("layer")
async def test_frames_in_and_out_count_every_frame_and_error_frames_count_by_code(consumer):
    name = consumer.__name__
    errors = [("realtime_error_frames_total", {"consumer": name, "code": code}) for code in ("bad_json", "not_here")]
    socket = await opened(consumer)
    before, errors_before = counts(consumer), values(*errors)
    await socket.send_json_to({"n": 1})
    assert await socket.receive_json_from() == {"echo": {"n": 1}}
    await socket.send_to(text_data='{"type": "ping"}')  # the sync base answers it from the event loop
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.send_to(text_data="{nope")
    await socket.send_json_to({"refuse": True})
    for code in ("bad_json", "not_here"):
        assert (await socket.receive_json_from())["code"] == code
    assert moved(before, counts(consumer)) == {"received": 4, "sent": 4}
    assert [after - was for after, was in zip(values(*errors), errors_before, strict=True)] == [1, 1]
    await socket.disconnect()


@consumers
async def test_relayed_frames_count_as_sent(consumer, layer):
    socket = await opened(consumer)
    before = counts(consumer)
    await layer.group_send("echo", relay_message(frame={"type": "note"}))
    assert await socket.receive_json_from() == {"type": "note"}
    assert moved(before, counts(consumer)) == {"sent": 1}
    await socket.disconnect()


@pytest.mark.usefixtures("layer")
async def test_a_sync_consumers_frames_are_counted_in_the_event_loop_not_in_its_handlers_thread(monkeypatch):
    """A socket's counts are written only in its event loop (SocketCounts): a sync consumer's
    handler sends from the ORM's thread, through async_to_sync."""
    writers = set()

    class RecordedCounts(metrics.FrameCounts):
        def __setattr__(self, name, value):
            writers.add(threading.get_ident())
            super().__setattr__(name, value)

    monkeypatch.setattr(metrics, "FrameCounts", RecordedCounts)
    socket = await opened(SyncEcho)
    await socket.send_json_to({"n": 1})
    assert await socket.receive_json_from() == {"echo": {"n": 1}}
    await socket.disconnect()
    assert writers == {threading.get_ident()}


def with_client(application, address: str):
    """The application as daphne calls it, with the client's address in the scope."""

    async def app(scope, receive, send):
        return await application({**scope, "client": (address, 50000)}, receive, send)

    return app


@pytest.fixture
def site_application(settings, layer):
    settings.WEBSOCKETS_PER_IP = 1
    return with_client(
        asgi_application(http=get_asgi_application(), websocket_urlpatterns=[path("echo/", AsyncEcho.as_asgi())]),
        "127.0.0.8",
    )


def refusals(outcome: str, consumer: str = "") -> float:
    return value("realtime_handshakes_total", consumer=consumer, outcome=outcome)


@pytest.mark.parametrize(
    ("outcome", "path", "origin"),
    [
        ("origin", "/echo/", "https://evil.example"),
        ("route", "/nowhere/", ORIGIN),
        ("ticket", "/echo/?ticket=x", ORIGIN),
    ],
)
async def test_a_handshake_refused_before_routing_counts_under_its_reason(site_application, outcome, path, origin):
    before = refusals(outcome)
    socket = WebsocketCommunicator(site_application, path, headers=[(b"origin", origin.encode())])
    connected, _ = await socket.connect()
    assert not connected
    assert refusals(outcome) - before == 1


async def test_a_socket_over_the_cap_counts_as_refused_for_cap(site_application):
    before, accepted = refusals("cap"), refusals("accepted", consumer="AsyncEcho")
    sockets = []
    for _ in range(2):
        sockets.append(WebsocketCommunicator(site_application, "/echo/", headers=[(b"origin", ORIGIN.encode())]))
        assert (await sockets[-1].connect())[0]
    assert await sockets[1].receive_output() == {"type": "websocket.close", "code": CLOSE_TOO_MANY_SOCKETS}
    assert (refusals("cap") - before, refusals("accepted", consumer="AsyncEcho") - accepted) == (1, 1)
    await sockets[0].disconnect()


async def test_a_ticket_not_redeemed_for_an_outage_counts_as_unavailable_not_as_a_bad_ticket(
    site_application, monkeypatch
):
    def database_down(*, ticket):
        raise OperationalError("database is locked")

    monkeypatch.setattr("realtime_common.tickets.ticket_redeem", database_down)
    before = refusals("unavailable"), refusals("ticket")
    socket = WebsocketCommunicator(site_application, "/echo/?ticket=x", headers=[(b"origin", ORIGIN.encode())])
    assert not (await socket.connect())[0]
    assert (refusals("unavailable") - before[0], refusals("ticket") - before[1]) == (1, 0)


def exposed(*, site: str) -> dict[tuple[str, tuple], float]:
    """The site's samples in the exposition Prometheus reads: (name, labels but site) -> value."""
    return {
        (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "site"))): sample.value
        for family in text_string_to_metric_families(generate_latest(REGISTRY).decode())
        for sample in family.samples
        if sample.labels.get("site") == site
    }


RARE_SERIES = [
    ("realtime_slow_readers_closed_total", ()),
    ("realtime_channel_layer_reconnects_total", ()),
    *[("realtime_group_sends_total", (("outcome", outcome),)) for outcome in ("failed", "sent")],
    *[("realtime_handshakes_total", (("consumer", ""), ("outcome", outcome))) for outcome in REFUSED_BEFORE_ROUTING],
]


# Each a site of its own, whose series no other test made.
FRESH_SITES = ("fresh-asgi-application", "fresh-metrics-init")


@pytest.mark.parametrize("site", FRESH_SITES)
def test_the_rare_counters_are_exposed_at_0_from_the_start(settings, site):
    """A counter first seen at 1 is no increase() for Prometheus: the first slow reader closed would not alert."""
    settings.SITE_NAME = site
    if site == "fresh-asgi-application":
        asgi_application(http=get_asgi_application(), websocket_urlpatterns=[])
    else:
        metrics_init()
        metrics_init()  # idempotent
    samples = exposed(site=settings.SITE_NAME)
    assert {series: samples.get(series) for series in RARE_SERIES} == dict.fromkeys(RARE_SERIES, 0.0)


create = sync_to_async(Note.objects.create)
notes = URLRouter([path("notes/<slug:board>/", NoteConsumer.as_asgi())])


@pytest.mark.usefixtures("layer")
async def test_the_delay_is_observed_once_per_event_sent_and_not_for_events_caught_up():
    pages = [await opened(notes, "/notes/a/") for _ in range(2)]
    delays, sends = value("realtime_event_delay_seconds_count"), value("realtime_group_sends_total", outcome="sent")
    for text in ("one", "two", "three"):
        await create(board="a", text=text)
    for socket in pages:
        assert [(await socket.receive_json_from())["seq"] for _ in range(3)] == [1, 2, 3]
    assert value("realtime_event_delay_seconds_count") - delays == 6
    assert value("realtime_group_sends_total", outcome="sent") - sends == 3
    # From the database, not through the group: no commit time to measure from.
    late = await opened(notes, "/notes/a/?since=0")
    assert [(await late.receive_json_from())["seq"] for _ in range(3)] == [1, 2, 3]
    assert value("realtime_event_delay_seconds_count") - delays == 6
    for socket in [*pages, late]:
        await socket.disconnect()


def test_the_commit_time_is_taken_before_the_hop_to_the_event_loop(monkeypatch):
    """A busy event loop makes the hop wait: that wait is part of the delay pages see. On a clock
    that ticks at each reading, the commit's reading comes before the hop starts."""
    ticks, hops, sent = itertools.count(), [], []
    monkeypatch.setattr("realtime_common.broadcast.time", SimpleNamespace(time=lambda: next(ticks)))

    def hop_timed(function):
        to_sync = async_to_sync(function)

        def hop(**kwargs):
            hops.append(next(ticks))
            return to_sync(**kwargs)

        return hop

    async def group_send(group, message):
        sent.append(message)

    monkeypatch.setattr("realtime_common.broadcast.async_to_sync", hop_timed)
    monkeypatch.setattr("realtime_common.broadcast.get_channel_layer", lambda: SimpleNamespace(group_send=group_send))
    with transaction.atomic():
        group_send_on_commit(group="notes", messages=[{"type": "note"}])
    assert [message["committed"] for message in sent] == [0] and hops == [1]


async def test_a_lost_redis_sets_the_layer_down_and_its_return_up_again(settings, tmp_path):
    server = RedisServer(directory=tmp_path)
    server.start()
    try:
        settings.CHANNEL_LAYERS = channel_layers(prefix="metrics-test", redis_urls=[server.url], kind="pubsub")
        layer = get_channel_layer()
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(channel))
        # The gauge is the process's: this test's own connection is looked at with it.
        (shard,) = layer._get_layer()._shards
        await until(lambda: shard._pubsub is not None and shard._pubsub.subscribed)
        assert (shard.lost, value("realtime_channel_layer_up")) == (False, 1)
        reconnects = value("realtime_channel_layer_reconnects_total")
        server.stop()
        await until(lambda: shard.lost and value("realtime_channel_layer_up") == 0)
        server.start()
        assert (await asyncio.wait_for(receiving, 10))["type"] == LAYER_RECONNECTED
        assert (shard.lost, value("realtime_channel_layer_up")) == (False, 1)
        assert value("realtime_channel_layer_reconnects_total") - reconnects == 1
        await layer.flush()
    finally:
        server.stop()


def test_a_lost_connection_forgotten_no_longer_holds_the_layer_down():
    """The gauge is computed from the connections alive when it is read: one forgotten while lost
    (its event loop closed, the layer flushed) does not keep the process down for ever."""

    class Connection:
        lost = True

    connection = Connection()
    channel_layer_watch(connection=connection)
    assert value("realtime_channel_layer_up") == 0
    del connection
    gc.collect()
    assert value("realtime_channel_layer_up") == 1


@contextlib.asynccontextmanager
async def socket_session(consumer: type):
    socket = await opened(consumer)
    yield socket
    await socket.disconnect()


async def site_not_found(scope, receive, send):
    """The site behind the endpoint, which has no /metrics: its 404 for an unknown path."""
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"the site's own 404"})


async def metrics_get(address: str) -> dict:
    application = with_client(MetricsEndpoint(site_not_found), address)
    response = await HttpCommunicator(application, "GET", "/metrics").get_response()
    if response["status"] == 404:
        assert response["body"] == b"the site's own 404"
    return response


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
async def test_metrics_are_served_to_loopback(address):
    response = await metrics_get(address)
    assert response["status"] == 200
    assert b"# TYPE realtime_sockets_open gauge" in response["body"]
    assert b"process_resident_memory_bytes" in response["body"]  # the client's process collector


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.1", "2001:db8::1", "not-an-address"])
async def test_metrics_are_the_sites_404_to_any_other_client(address):
    assert (await metrics_get(address))["status"] == 404


async def test_a_network_allowed_by_the_settings_may_read_them(settings):
    settings.METRICS_ALLOWED_NETWORKS = networks_parse(["10.0.0.0/8"])
    assert (await metrics_get("10.1.2.3"))["status"] == 200
    assert (await metrics_get("127.0.0.1"))["status"] == 404


@pytest.mark.usefixtures("layer")
async def test_with_metrics_off_nothing_is_counted_and_the_endpoint_is_a_404(settings):
    settings.METRICS_ENABLED = False
    before = ours()
    assert (await metrics_get("127.0.0.1"))["status"] == 404
    async with socket_session(AsyncEcho) as socket:
        await socket.send_json_to({"n": 1})
        assert await socket.receive_json_from() == {"echo": {"n": 1}}
        await socket.send_to(text_data="{nope")
        assert (await socket.receive_json_from())["code"] == "bad_json"
        assert await group_send_logged(group="echo", message=relay_message(frame={"type": "note"}))
        assert await socket.receive_json_from() == {"type": "note"}
    assert ours() == before


def subclass_names(base: type) -> set[str]:
    return {name for sub in base.__subclasses__() for name in {sub.__name__, *subclass_names(sub)}}


ERROR_CODES = {"bad_json", "bad_frame", "binary_frame", "rate_limited", "read_only", "busy", "unavailable", "not_here"}
# Every value each label may take: a value from a page, a room or a user would be a series per value.
BOUNDED = {
    "site": {SITE, "liveblog", "chat", "sketchpad", *FRESH_SITES}.__contains__,
    # Read when checked: consumers of test modules imported after this one count too.
    "consumer": lambda name: name in {"", *subclass_names(SocketMetrics)},
    "outcome": {"accepted", "refused", *REFUSED_BEFORE_ROUTING, "sent", "failed"}.__contains__,
    # A close code (a number, or OTHER_CODE), or an error frame's code.
    "code": lambda code: code.isdigit() or code in {OTHER_CODE, *ERROR_CODES},
    "le": lambda le: le == "+Inf" or float(le) in DELAY_BUCKETS,
}


@pytest.mark.usefixtures("layer")
async def test_labels_are_only_of_bounded_kinds():
    async with socket_session(SyncEcho), socket_session(AsyncEcho):
        text = generate_latest(REGISTRY).decode()
    labels = {
        (label, label_value)
        for family in text_string_to_metric_families(text)
        if family.name.startswith(OURS)
        for sample in family.samples
        for label, label_value in sample.labels.items()
    }
    assert ("consumer", "SyncEcho") in labels and {label for label, _ in labels} <= BOUNDED.keys()
    assert {(label, label_value) for label, label_value in labels if not BOUNDED[label](label_value)} == set()


async def test_a_slow_reader_closed_is_counted():
    """On a stand-in for daphne's protocol (as tests/test_sockets.py), with more waiting than the limit."""
    states = {
        name: getattr(WebSocketProtocol, name)
        for name in ("STATE_CONNECTING", "STATE_OPEN", "STATE_CLOSING", "STATE_CLOSED")
    }
    closed = []
    protocol = SimpleNamespace(
        **states,
        state=WebSocketProtocol.STATE_OPEN,
        transport=SimpleNamespace(dataBuffer=b"x" * (SEND_BUFFER_LIMIT + 1), offset=0, _tempDataLen=0),
        sendCloseFrame=lambda *, code, isReply: closed.append(code),
    )
    before = value("realtime_slow_readers_closed_total")
    guarded = GuardedSend(protocol=protocol, send=None, scope={"path": "/ws/"})
    for _ in range(2):  # closed once: what follows is dropped
        await guarded({"type": "websocket.send", "text": "{}"})
    assert closed == [CLOSE_SLOW_READER]
    assert value("realtime_slow_readers_closed_total") - before == 1


@pytest.mark.parametrize("port_set", [True, False])
def test_the_worker_serves_its_metrics_on_its_port_only_when_one_is_set(settings, port_set):
    settings.METRICS_PORT, settings.METRICS_ADDR = (free_port() if port_set else None), "127.0.0.1"
    server = metrics_serve()
    if not port_set:
        assert server is None
        return
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.METRICS_PORT}/metrics", timeout=5) as response:
            assert b"# TYPE realtime_sockets_open gauge" in response.read()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("header", [b"x-forwarded-for", b"forwarded", b"x-real-ip"])
async def test_a_request_that_came_through_a_proxy_is_never_answered_whatever_address_it_claims(header):
    # daphne's --proxy-headers would have taken "127.0.0.1" from the client's own X-Forwarded-For.
    application = with_client(MetricsEndpoint(site_not_found), "127.0.0.1")
    communicator = HttpCommunicator(application, "GET", "/metrics", headers=[(header, b"127.0.0.1")])
    response = await communicator.get_response()
    assert (response["status"], response["body"]) == (404, b"the site's own 404")
