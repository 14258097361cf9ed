"""The scenarios: each a function ``<name>_run(*, bench) -> dict`` of results for the report."""

from bench.context import Bench


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


def delivery_check(*, bench: Bench, scenario: str, what: str, delivered: int, expected: int, extra: str = "") -> bool:
    pct = 100.0 * delivered / expected if expected else 100.0
    return bench.check(
        scenario=scenario,
        name=f"{what}: {delivered}/{expected} delivered ({pct:.2f} %)",
        ok=delivered == expected and expected > 0,
        detail=extra,
    )


def per_frame_us(*, cpu_seconds: float, frames: int) -> float | None:
    return round(cpu_seconds / frames * 1e6, 2) if frames else None
