"""The sites' own metrics beside the bench's figures: each daphne process's ``/metrics`` scraped
when it is up and again before it stops (``SiteMetrics``), what moved summed up per scenario
(``metrics_summary``), and, for the picture, its sockets and delay sampled every half second.

Scraped over loopback, which DJANGO_METRICS_ALLOWED_NETWORKS allows by default. A process
started with DJANGO_METRICS=0 (the overhead scenario's "off") is not scraped: it answers 404."""

import threading
import time
from dataclasses import dataclass, field

from realtime_common.testing.metrics import (
    Samples,
    histogram_quantile,
    metric_value,
    metrics_delta,
    metrics_scrape,
    metrics_sum,
)

DELAY = "realtime_event_delay_seconds"
# The picture's sampling (--metrics-plot): every half second shows a scenario's sockets rise and fall.
SAMPLE_INTERVAL = 0.5
# How long the sockets a scenario closed may take to be counted closed by the server before it stops.
SETTLE_TIMEOUT = 15.0


def metrics_url(*, url: str) -> str:
    return f"{url}/metrics"


def sockets_open(samples: Samples) -> float:
    return metric_value(samples, "realtime_sockets_open")


@dataclass
class SiteMetrics:
    """One serving of a site (``bench.procs.site_serving``): its processes' first scrape, and what
    moved by the end (``deltas``, one per serving, read and cleared by ``metrics_taken``); with an
    ``interval``, a thread samples them for the picture (``timeline``)."""

    interval: float | None = None
    deltas: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    first: dict[str, Samples] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def started(self, *, site: str, urls: list[str]) -> None:
        self.first = {url: metrics_scrape(url=metrics_url(url=url)) for url in urls}
        if self.interval:
            self.stopping.clear()
            self.thread = threading.Thread(target=self.sample, args=(site, urls), name="metrics", daemon=True)
            self.thread.start()

    def process_added(self, *, url: str) -> None:
        """One more process of this serving, started after the others (the sampler reads the same list of URLs)."""
        self.first[url] = metrics_scrape(url=metrics_url(url=url))

    def sample(self, site: str, urls: list[str]) -> None:
        while not self.stopping.wait(self.interval):
            try:
                samples = metrics_sum(*(metrics_scrape(url=metrics_url(url=url)) for url in urls))
            except OSError:
                continue  # a process busy past the timeout: a gap in the picture, not an error
            buckets = {key: value for key, value in samples.items() if key[0] == f"{DELAY}_bucket"}
            self.timeline.append({"t": time.time(), "site": site, "sockets": sockets_open(samples), "delay": buckets})

    def stopped(self, *, layer: str | None) -> None:
        """Before the processes stop: wait (bounded) until every socket the scenario closed is
        counted closed, then keep what moved since ``started``."""
        self.sampling_stop()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            last = {url: metrics_scrape(url=metrics_url(url=url)) for url in self.first}
            settled = sockets_open(metrics_sum(*last.values())) == 0
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # polling the server's own count: the condition waited on, with a deadline
        delta = metrics_sum(*(metrics_delta(before=self.first[url], after=last[url]) for url in self.first))
        self.deltas.append({"layer": layer, "processes": len(self.first), "settled": settled, "delta": delta})
        self.first = {}

    def sampling_stop(self) -> None:
        """No more samples (also when the scenario failed and ``stopped`` is never called)."""
        if self.thread:
            self.stopping.set()
            self.thread.join(timeout=10)
            self.thread = None

    def taken(self) -> list[dict]:
        """The servings since the last call."""
        taken, self.deltas = self.deltas, []
        return taken


def by_label(delta: Samples, name: str, label: str) -> dict[str, int]:
    """A counter's movement by one of its labels (only the values that moved)."""
    values: dict[str, int] = {}
    for (sample, pairs), value in delta.items():
        if sample == name and value:
            key = dict(pairs).get(label, "")
            values[key] = values.get(key, 0) + round(value)
    return dict(sorted(values.items()))


def metrics_summary(*, delta: Samples) -> dict:
    """The counters a scenario moved, as its results keep them."""
    p99 = histogram_quantile(delta, DELAY, 0.99)
    return {
        "frames_sent": round(metric_value(delta, "realtime_frames_sent_total")),
        "frames_received": round(metric_value(delta, "realtime_frames_received_total")),
        "handshakes": by_label(delta, "realtime_handshakes_total", "outcome"),
        "closes": by_label(delta, "realtime_closes_total", "code"),
        "error_frames": by_label(delta, "realtime_error_frames_total", "code"),
        "group_sends": by_label(delta, "realtime_group_sends_total", "outcome"),
        "slow_readers_closed": round(metric_value(delta, "realtime_slow_readers_closed_total")),
        "sockets_open_change": round(sockets_open(delta)),
        "delay_count": round(metric_value(delta, f"{DELAY}_count")),
        "delay_p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
    }


def scenario_metrics(*, servings: dict[str, list[dict]]) -> dict:
    """A scenario's servings, by site: what moved over all of them, and whether every socket
    was counted closed before its processes stopped."""
    return {
        site: {
            **metrics_summary(delta=metrics_sum(*(serving["delta"] for serving in taken))),
            "servings": len(taken),
            "settled": all(serving["settled"] for serving in taken),
        }
        for site, taken in servings.items()
        if taken
    }
