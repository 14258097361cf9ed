"""Summaries of measurements: percentiles, trends. Plain Python, so the client needs no numpy."""

import math
from collections.abc import Sequence


def percentile(*, values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(*, values: Sequence[float], scale: float = 1000.0) -> dict:
    """count, p50, p95, p99, max and mean; latencies in seconds come out in ms (``scale``)."""
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def pick(fraction: float) -> float:
        return round(percentile(values=ordered, fraction=fraction) * scale, 3)

    return {
        "count": len(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1] * scale, 3),
        "mean": round(sum(ordered) / len(ordered) * scale, 3),
    }


def slope(*, xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys against xs; None with fewer than two points."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if len(pairs) < 2:
        return None
    mean_x = sum(x for x, _ in pairs) / len(pairs)
    mean_y = sum(y for _, y in pairs) / len(pairs)
    spread = sum((x - mean_x) ** 2 for x, _ in pairs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in pairs) / spread


def median(*, values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return percentile(values=present, fraction=0.5)


def backlog_verdict(*, per_post_p50: Sequence[float | None], per_post_complete: Sequence[bool]) -> dict:
    """Does the server fall behind the publish rate? Yes if the p50 latency grows from post to
    post, or if any of the last five posts had not reached every socket when the wait ended.

    Growth counts when the last five posts' median p50 is over 1.5 times the first five's and at
    least 10 ms more: jitter of a few ms on a fast run is not a backlog.
    """
    indexes = list(range(len(per_post_p50)))
    trend = slope(xs=indexes, ys=list(per_post_p50))
    first = median(values=per_post_p50[:5])
    last = median(values=per_post_p50[-5:])
    grows = first is not None and last is not None and last > 1.5 * first and last - first >= 10
    unfinished = sum(1 for complete in per_post_complete[-5:] if not complete)
    reasons = (["p50 grows"] if grows else []) + (
        [f"{unfinished} of the last 5 posts not delivered to all"] if unfinished else []
    )
    return {
        "slope_ms_per_post": None if trend is None else round(trend, 3),
        "first5_p50_ms": None if first is None else round(first, 3),
        "last5_p50_ms": None if last is None else round(last, 3),
        "incomplete_posts": sum(1 for complete in per_post_complete if not complete),
        "backlog": bool(reasons),
        "reason": "; ".join(reasons),
    }


def ratio(*, numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def p99_within(*, latency: dict, limit_ms: float) -> bool:
    """Is the p99 of a latency summary (see ``summary``) within the limit? Not with no values."""
    return latency["p99"] is not None and latency["p99"] <= limit_ms


def values_spread(*, values: Sequence[float | None]) -> dict | None:
    """Median, min and max of the values present, and all of them; None with none."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return {"median": median(values=present), "min": min(present), "max": max(present), "values": present}


def ratios_summary(*, numerators: Sequence[float | None], denominators: Sequence[float | None]) -> dict | None:
    """The ratios of paired measurements, numerator i over denominator i: their median, range
    (low, high) and interquartile range (q1, q3); None with no complete pair."""
    ratios = [top / bottom for top, bottom in zip(numerators, denominators, strict=True) if top is not None and bottom]
    if not ratios:
        return None

    def pick(fraction: float) -> float:
        return round(percentile(values=ratios, fraction=fraction), 4)

    return {
        "median": pick(0.5),
        "low": pick(0.0),
        "high": pick(1.0),
        "q1": pick(0.25),
        "q3": pick(0.75),
        "values": [round(ratio, 4) for ratio in ratios],
    }
