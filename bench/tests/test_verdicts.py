"""Verdicts under steal and over ranges: a noisy result never PASSes, a range across the target proves neither."""

import pytest

from bench.stats import ratios_summary
from bench.verdicts import CROSSES, NOISY_STEAL_PCT, range_judge, runs_judge, steal_worst, verdict_judge


@pytest.mark.parametrize(
    ("ok", "steal_pct", "expected"),
    [
        (True, 0.0, "PASS"),
        (False, 0.0, "FAIL"),
        (True, None, "PASS"),  # not measured
        (True, NOISY_STEAL_PCT, "PASS"),  # at the limit, not over it
        (True, NOISY_STEAL_PCT + 0.01, "NOISY"),
        (False, 50.0, "NOISY"),
        (None, 50.0, "n/a"),  # not run at the target's size
    ],
)
def test_verdict_judge(ok, steal_pct, expected):
    assert verdict_judge(ok=ok, steal_pct=steal_pct) == expected


def ratio_of(*values: float) -> dict:
    return ratios_summary(numerators=list(values), denominators=[1.0] * len(values))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((3.1, 3.5, 3.9), "PASS"),
        ((4.1, 4.8, 6.8), "FAIL"),
        ((3.5, 3.9, 4.8), CROSSES),  # the median passes, but the range does not prove it
        ((4.0,), "PASS"),  # the bound itself is within
    ],
)
def test_range_judge_at_most(values, expected):
    assert range_judge(ratio=ratio_of(*values), within=(0.0, 4.0), steal_pct=0.5) == expected


def test_range_judge_at_least_and_both_sides():
    assert range_judge(ratio=ratio_of(0.2, 0.3), within=(1 / 3, float("inf")), steal_pct=0.0) == "FAIL"
    assert range_judge(ratio=ratio_of(0.5, 0.9), within=(1 / 3, float("inf")), steal_pct=0.0) == "PASS"
    assert range_judge(ratio=ratio_of(0.9, 0.95), within=(0.97, 1.03), steal_pct=0.0) == "FAIL"
    assert range_judge(ratio=ratio_of(0.99, 1.05), within=(0.97, 1.03), steal_pct=0.0) == CROSSES


def test_range_judge_noisy_and_missing():
    assert range_judge(ratio=ratio_of(3.0, 3.1), within=(0.0, 4.0), steal_pct=12.0) == "NOISY"
    assert range_judge(ratio=None, within=(0.0, 4.0), steal_pct=12.0) == "n/a"


@pytest.mark.parametrize(
    ("oks", "steal_pct", "expected"),
    [
        ([True, True, True], 1.0, "PASS"),
        ([False, False], 1.0, "FAIL"),
        ([True, False, True], 1.0, CROSSES),
        ([True, True], 6.0, "NOISY"),
        ([], 0.0, "n/a"),
    ],
)
def test_runs_judge(oks, steal_pct, expected):
    assert runs_judge(oks=oks, steal_pct=steal_pct) == expected


def test_steal_worst():
    assert steal_worst(None, 2.5, 0.1) == 2.5
    assert steal_worst(None, None) is None
