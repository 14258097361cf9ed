"""The scenarios: each a function ``<name>_run(*, bench) -> dict`` of results for the report."""

from collections.abc import Callable

from bench.context import Bench
from bench.metrics import scenario_metrics
from bench.procs import BenchSite
from bench.stats import ratios_summary, values_spread


def ws_of(*, url: str) -> str:
    """ws://host:port of an http://host:port URL."""
    return "ws" + url.removeprefix("http")


def connect_check(*, bench: Bench, scenario: str, what: str, result: dict) -> bool:
    """Every socket asked for connected (and got its first frame where one is awaited)."""
    failures = ", ".join(f"{reason}: {count}" for reason, count in result.get("failures", {}).items())
    return bench.check(
        scenario=scenario,
        name=f"{what}: {result['connected']}/{result['requested']} sockets connected",
        ok=result["failed"] == 0,
        detail=failures,
    )


def delivery_check(
    *, bench: Bench, scenario: str, what: str, answer: dict, notes: dict[str, object] | None = None
) -> bool:
    """Every frame the client's ``answer`` expected was delivered; ``notes``: counts shown in the
    detail where they are not zero or empty (duplicates, error codes)."""
    delivered, expected = answer["delivered"], answer["expected"]
    pct = 100.0 * delivered / expected if expected else 100.0
    return bench.check(
        scenario=scenario,
        name=f"{what}: {delivered}/{expected} delivered ({pct:.2f} %)",
        ok=delivered == expected and expected > 0,
        detail=", ".join(f"{label} {value}" for label, value in (notes or {}).items() if value),
    )


def tracebacks_check(*, bench: Bench, scenario: str, site: BenchSite, name: str = "no server tracebacks") -> str:
    """The tracebacks the site's processes logged since the last look, as the results keep them;
    any at all fail a check (its detail shorter: the report shows it in a table)."""
    errors = site.tracebacks()
    if errors:
        bench.check(scenario=scenario, name=name, ok=False, detail=errors[:1500])
    return errors[:3000]


def per_frame_us(*, cpu_seconds: float, frames: int) -> float | None:
    return round(cpu_seconds / frames * 1e6, 2) if frames else None


def site_metrics_record(*, bench: Bench, scenario: str) -> dict:
    """What the scenario moved in its sites' own metrics, by site, and two exact checks of them
    against what the bench did: every socket it opened is counted closed by the server before
    the server stopped (the open-sockets gauge is back where it was), and counted closed once
    (as many closes as accepted handshakes)."""
    recorded = scenario_metrics(servings={name: site.metrics.taken() for name, site in bench.sites.items()})
    for site, counts in recorded.items():
        accepted, closed = counts["handshakes"].get("accepted", 0), sum(counts["closes"].values())
        bench.check(
            scenario=scenario,
            name=f"{site} metrics: {accepted} handshakes accepted, {closed} closes counted, "
            f"open sockets {counts['sockets_open_change']:+d}",
            ok=counts["settled"] and accepted == closed and counts["sockets_open_change"] == 0,
            detail=f"closes by code {counts['closes']}",
        )
    return recorded


def runs_alternate(*, states: tuple[str, str], rounds: int, measure: Callable[..., dict]) -> dict[str, list[dict]]:
    """``rounds`` runs of each of two states, alternated, the order flipped each round (a then b,
    then b then a, ...) so that a drift of the machine (a neighbour's load, a warming cache) falls
    on both alike. ``measure(state=..., round_number=...)`` makes one run; rounds count from 1."""
    runs: dict[str, list[dict]] = {state: [] for state in states}
    for number in range(rounds):
        for state in states if number % 2 == 0 else states[::-1]:
            runs[state].append(measure(state=state, round_number=number + 1))
    return runs


def per_frame_compare(*, runs: dict[str, list[dict]], over: tuple[str, str]) -> dict:
    """The server CPU per frame of alternated runs (``runs_alternate``): median and range per
    state, and the ratio of ``over[0]`` to ``over[1]`` round by round. A round's two runs are
    back to back, so its ratio is spared the drift between rounds that the states' own ranges
    show; the median of those ratios, their range and their interquartile range."""
    per_frame = {state: [row["server_cpu_per_frame_us"] for row in rows] for state, rows in runs.items()}
    return {
        "per_frame_us": {state: values_spread(values=values) for state, values in per_frame.items()},
        "ratio": ratios_summary(numerators=per_frame[over[0]], denominators=per_frame[over[1]]),
        "steal_pct_max": max(row["server_cpu_steal_pct"] for rows in runs.values() for row in rows),
    }


def fanout_alternate(
    *, bench: Bench, sizes: tuple[int, int, int, float], states: tuple[str, str], measure: Callable[..., dict]
) -> dict:
    """The liveblog's fan-out of ``sizes`` (sockets, rounds, posts, rate) measured in two states
    alternated (``runs_alternate``), with ``per_frame_compare``'s figures of the first state over
    the second: the results the report's ``alternated_markdown`` reads."""
    sockets, rounds, posts, rate = sizes
    runs = runs_alternate(states=states, rounds=rounds, measure=measure)
    return {
        "layer": bench.layer_other,
        "sockets": sockets,
        "posts": posts,
        "rate": rate,
        "rounds": rounds,
        "runs": runs,
        **per_frame_compare(runs=runs, over=states),
    }
