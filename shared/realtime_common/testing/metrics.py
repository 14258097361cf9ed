"""Reading a process's ``/metrics`` from a test or the bench: scrape it, take the difference
of two scrapes, read one metric (summed over the labels not asked for), estimate a quantile.

The bench records each scenario's metrics beside its own counts and the fault tests assert
what a fault shows in them, both through these few functions, over loopback (allowed by
default: DJANGO_METRICS_ALLOWED_NETWORKS)."""

import math
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# A sample's name and its labels, sorted: the same series in two scrapes has the same key.
Key = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[Key, float]


def metrics_scrape(*, url: str, timeout: float = 5.0) -> Samples:
    """Every sample a process serves at ``url`` (its ``.../metrics``)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return metrics_parse(text=response.read().decode())


def metrics_parse(*, text: str) -> Samples:
    """The samples of a scrape's text (the Prometheus text format)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metrics_delta(*, before: Samples, after: Samples) -> Samples:
    """What moved between two scrapes of one process (a series new in ``after`` counts from 0)."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def metrics_sum(*samples: Samples) -> Samples:
    """Several processes' samples (or deltas) added up, series by series."""
    total: Samples = {}
    for one in samples:
        for key, value in one.items():
            total[key] = total.get(key, 0.0) + value
    return total


def metric_value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``
    (``metric_value(s, "realtime_closes_total", code="1013")``: every consumer's)."""
    wanted = set(labels.items())
    return sum(value for (sample, pairs), value in samples.items() if sample == name and wanted <= set(pairs))


def histogram_quantile(samples: Samples, name: str, quantile: float, **labels: str) -> float | None:
    """The ``quantile`` of histogram ``name`` (its ``_bucket`` samples, or their delta), linearly
    interpolated inside its bucket as Prometheus's histogram_quantile() does; None without observations.
    Past the highest finite bucket it is that bucket's bound: the histogram knows no more."""
    buckets: dict[float, float] = {}
    wanted = set(labels.items())
    for (sample, pairs), value in samples.items():
        if sample == f"{name}_bucket" and wanted <= set(pairs):
            bound = float(dict(pairs)["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return None
    rank, lower, below = quantile * total, 0.0, 0.0
    for bound in sorted(buckets):
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below) if count > below else bound
        lower, below = bound, count
    return lower
