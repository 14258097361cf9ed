"""Formatting for the report: numbers, and markdown tables; and reading the results' rows."""

from bench.stats import ratio

DASH = "—"


def fmt(value, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return DASH
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def requested(*, row: dict) -> int:
    return row["connect"]["requested"]


def bare_cpu_ratio(*, liveblog: dict, row: dict) -> float | None:
    """A fan-out row's server CPU per delivered frame over the bare websockets server's at the same
    number of sockets; None where either is missing or the bare one is 0 (below /proc's resolution)."""
    bare = {requested(row=base): base for base in liveblog.get("baselines", {}).get("bare", {}).get("rows", [])}
    base = bare.get(requested(row=row))
    return ratio(numerator=row["server_cpu_per_frame_us"], denominator=base and base["server_cpu_per_frame_us"])


def table(*, header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
