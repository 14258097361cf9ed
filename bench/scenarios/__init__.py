"""The scenarios: each a function ``<name>_run(*, bench) -> dict`` of results for the report."""

from bench.context import Bench
from bench.metrics import scenario_metrics
from bench.procs import BenchSite


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
