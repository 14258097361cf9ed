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


def round_ratio(*, layer: dict, row: dict) -> float | None:
    """A liveblog layer's run: its server CPU per delivered frame over that of the bare server's run
    of the same size and round (the two ran back to back); None where either is missing or the
    bare one is 0 (below /proc's resolution)."""
    bare = next(
        (
            base
            for base in layer.get("bare_rows", [])
            if requested(row=base) == requested(row=row) and base["round"] == row.get("round")
        ),
        None,
    )
    return ratio(numerator=row["server_cpu_per_frame_us"], denominator=bare and bare["server_cpu_per_frame_us"])


def median_rows(*, rows: list[dict]) -> list[dict]:
    """Of runs repeated at each size, one per size, in order of size: the run whose server CPU per
    frame is the median (the lower of the middle two for an even count; runs without a figure last)."""
    by_size: dict[int, list[dict]] = {}
    for row in rows:
        by_size.setdefault(requested(row=row), []).append(row)
    middle = []
    for size in sorted(by_size):
        ordered = sorted(
            by_size[size], key=lambda row: (row["server_cpu_per_frame_us"] is None, row["server_cpu_per_frame_us"] or 0)
        )
        middle.append(ordered[(len(ordered) - 1) // 2])
    return middle


def ratio_text(*, ratio: dict | None, digits: int = 2) -> str:
    """A ratio over alternated rounds (``bench.stats.ratios_summary``): its median and range."""
    if ratio is None:
        return DASH
    return f"{ratio['median']:.{digits}f}× ({ratio['low']:.{digits}f} – {ratio['high']:.{digits}f})"


def table(*, header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
