"""realtime_common.testing.metrics: what the bench and the fault tests read of a process's /metrics."""

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from realtime_common.testing.metrics import histogram_quantile, metric_value, metrics_delta, metrics_parse, metrics_sum


def scrape(registry: CollectorRegistry):
    return metrics_parse(text=generate_latest(registry).decode())


@pytest.fixture
def registry():
    return CollectorRegistry()


def test_a_counter_is_read_summed_over_the_labels_not_asked_for(registry):
    closes = Counter("closes", "", ["consumer", "code"], registry=registry)
    closes.labels("A", "1000").inc(2)
    closes.labels("B", "1000").inc(3)
    closes.labels("B", "1013").inc()
    shown = scrape(registry)
    assert metric_value(shown, "closes_total") == 6
    assert metric_value(shown, "closes_total", code="1000") == 5
    assert metric_value(shown, "closes_total", consumer="B", code="1013") == 1
    assert metric_value(shown, "closes_total", code="4000") == 0


def test_the_delta_of_two_scrapes_counts_a_new_series_from_zero_and_sums_over_processes(registry):
    sockets = Gauge("sockets", "", ["consumer"], registry=registry)
    sockets.labels("A").set(4)
    before = scrape(registry)
    sockets.labels("A").set(1)
    sockets.labels("B").set(2)
    delta = metrics_delta(before=before, after=scrape(registry))
    assert metric_value(delta, "sockets", consumer="A") == -3
    assert metric_value(delta, "sockets", consumer="B") == 2
    assert metric_value(metrics_sum(delta, delta), "sockets") == -2


def test_a_quantile_is_interpolated_in_its_bucket_as_prometheus_does(registry):
    delay = Histogram("delay", "", buckets=(0.1, 0.2, 0.4), registry=registry)
    assert histogram_quantile(scrape(registry), "delay", 0.99) is None
    for value in [0.05] * 50 + [0.15] * 40 + [0.3] * 10:
        delay.observe(value)
    shown = scrape(registry)
    assert histogram_quantile(shown, "delay", 0.5) == pytest.approx(0.1)
    # Rank 99 of 100: 9 of the 10 observations of the (0.2, 0.4] bucket in.
    assert histogram_quantile(shown, "delay", 0.99) == pytest.approx(0.2 + 0.2 * 9 / 10)
    delay.observe(5.0)  # past the highest bucket: the histogram knows only that it is over 0.4
    assert histogram_quantile(scrape(registry), "delay", 1.0) == pytest.approx(0.4)
