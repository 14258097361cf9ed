"""realtime_common.metrics.SocketCounts: the per-frame counts kept in each socket's own plain
numbers and added up when Prometheus scrapes, against what the client's Counter and Histogram
would have shown. The registry is the process's: every test compares a value before and after."""

from types import SimpleNamespace

import pytest
from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from realtime_common import metrics
from realtime_common.metrics import DELAY_BUCKETS, SocketMeter

# A consumer class of the test app: the label's values are bounded to the consumers (test_metrics.py).
CONSUMER = "NoteConsumer"


def sent() -> float:
    labels = {"site": settings.SITE_NAME, "consumer": CONSUMER}
    return REGISTRY.get_sample_value("realtime_frames_sent_total", labels) or 0.0


def delay_samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """The delay histogram's samples of this site: (name, le) -> value."""
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in registry.collect()
        if family.name == "realtime_event_delay_seconds"
        for sample in family.samples
        if sample.labels["site"] == settings.SITE_NAME
    }


async def frames_sent(meter: SocketMeter, count: int) -> None:
    async def send(message):
        pass

    counted = meter.send_counted(send)
    for _ in range(count):
        await counted({"type": "websocket.send", "text": "{}"})


async def test_a_sockets_frames_are_counted_once_whether_it_is_open_or_ended():
    before = sent()
    meter = SocketMeter(consumer=CONSUMER)
    await frames_sent(meter, 3)
    assert sent() - before == 3  # open: read from the socket's own count
    # A consumer that raised is told twice that it ended: its frames move into the totals once.
    meter.ended(crashed=True)
    meter.ended(crashed=False)
    assert sent() - before == 3
    another = SocketMeter(consumer=CONSUMER)
    await frames_sent(another, 2)
    assert sent() - before == 5
    another.ended(crashed=False)
    assert sent() - before == 5


async def test_a_counted_send_hands_over_the_awaitable_of_send_itself():
    # Every frame sent passes through it: no coroutine of its own per frame, only send's.
    sent_messages = []

    async def send(message):
        sent_messages.append(message)

    meter = SocketMeter(consumer=CONSUMER)
    awaitable = meter.send_counted(send)({"type": "websocket.send", "text": "{}"})
    assert awaitable.cr_code is send.__code__
    await awaitable
    assert sent_messages == [{"type": "websocket.send", "text": "{}"}]
    meter.ended(crashed=False)


def test_delays_fall_in_the_buckets_the_clients_histogram_puts_them_in(monkeypatch):
    # Bounds themselves, between them, below the first and past the last (+Inf), and a clock gone back.
    delays = [*DELAY_BUCKETS, 0.0, 0.0004, 0.003, 0.7, 7.0, 11.0, 60.0, -0.5]
    registry = CollectorRegistry()
    histogram = Histogram(
        "realtime_event_delay_seconds", "", ["site"], buckets=DELAY_BUCKETS, registry=registry
    ).labels(settings.SITE_NAME)
    # At time 0, an event committed at -delay is exactly delay late.
    monkeypatch.setattr(metrics, "time", SimpleNamespace(time=lambda: 0.0))
    before = delay_samples(REGISTRY)
    meter = SocketMeter(consumer=CONSUMER)
    for delay in delays:
        histogram.observe(delay)
        meter.event_sent(committed=-delay)
    meter.event_sent(committed=None)  # caught up from the database: not observed
    meter.ended(crashed=False)
    after = delay_samples(REGISTRY)
    assert {key: after[key] - before.get(key, 0.0) for key in after} == pytest.approx(delay_samples(registry))
