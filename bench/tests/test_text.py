"""Reading alternated runs: a run's ratio to its round's baseline, and the median run per size."""

from bench.scenarios import runs_alternate
from bench.text import median_rows, ratio_text, round_ratio


def row(*, sockets: int, round_number: int, per_frame: float | None) -> dict:
    return {"connect": {"requested": sockets}, "round": round_number, "server_cpu_per_frame_us": per_frame}


def test_round_ratio_pairs_the_bare_run_of_the_same_size_and_round():
    layer = {
        "bare_rows": [
            row(sockets=1000, round_number=1, per_frame=10.0),
            row(sockets=1000, round_number=2, per_frame=20.0),
            row(sockets=3000, round_number=2, per_frame=5.0),
        ]
    }
    assert round_ratio(layer=layer, row=row(sockets=1000, round_number=2, per_frame=60.0)) == 3.0
    assert round_ratio(layer=layer, row=row(sockets=3000, round_number=1, per_frame=60.0)) is None


def test_median_rows_one_per_size_in_order():
    rows = [
        row(sockets=3000, round_number=1, per_frame=9.0),
        row(sockets=1000, round_number=1, per_frame=5.0),
        row(sockets=1000, round_number=2, per_frame=None),
        row(sockets=1000, round_number=3, per_frame=3.0),
        row(sockets=1000, round_number=4, per_frame=4.0),
    ]
    middle = median_rows(rows=rows)
    assert [(item["connect"]["requested"], item["round"]) for item in middle] == [(1000, 4), (3000, 1)]


def test_ratio_text():
    assert ratio_text(ratio={"median": 4.25, "low": 3.9, "high": 4.8}) == "4.25× (3.90 – 4.80)"
    assert ratio_text(ratio=None) == "—"


def test_runs_alternate_flips_the_order_each_round():
    order = []
    runs_alternate(
        states=("site", "bare"),
        rounds=3,
        measure=lambda *, state, round_number: order.append((state, round_number)) or {},
    )
    assert order == [("site", 1), ("bare", 1), ("bare", 2), ("site", 2), ("site", 3), ("bare", 3)]
