"""A target's verdict: PASS, FAIL, NOISY, "range crosses the target", or n/a.

On a shared machine the hypervisor may give a CPU's turns to another machine (steal time, from
/proc/stat). The CPU a process is charged then stays right, but everything timed (latency, rates,
how much a server keeps up with) is slowed by a neighbour, and repeated runs of the same code
swing apart: a result measured under more than ``NOISY_STEAL_PCT`` of steal proves nothing
either way, so it is NOISY, never PASS (nor FAIL). A ratio measured over several alternated
rounds is judged on its whole range: a range with the target inside proves neither."""

# Steal over this share of a measured window's wall time makes its result NOISY.
NOISY_STEAL_PCT = 5.0
CROSSES = "range crosses the target"


def steal_noisy(*, steal_pct: float | None) -> bool:
    """Was the measurement's steal over the limit? Unknown steal (not measured) is not noisy."""
    return steal_pct is not None and steal_pct > NOISY_STEAL_PCT


def verdict_judge(*, ok: bool | None, steal_pct: float | None) -> str:
    """A yes/no target: n/a where the run had not the sizes it names (``ok`` None), NOISY over the steal limit."""
    if ok is None:
        return "n/a"
    if steal_noisy(steal_pct=steal_pct):
        return "NOISY"
    return "PASS" if ok else "FAIL"


def range_judge(*, ratio: dict | None, within: tuple[float, float], steal_pct: float | None) -> str:
    """A ratio over alternated rounds (``bench.stats.ratios_summary``) against the interval it must
    lie in: PASS when its whole range (lowest to highest round) is inside, FAIL when the whole
    range is outside, otherwise the rounds prove neither."""
    if ratio is None:
        return "n/a"
    if steal_noisy(steal_pct=steal_pct):
        return "NOISY"
    low, high = within
    if low <= ratio["low"] and ratio["high"] <= high:
        return "PASS"
    if ratio["high"] < low or ratio["low"] > high:
        return "FAIL"
    return CROSSES


def runs_judge(*, oks: list[bool], steal_pct: float | None) -> str:
    """A yes/no target met or not in each of several runs of one size: PASS when every run met
    it, FAIL when none did; runs that disagree prove neither (n/a with no run)."""
    if not oks:
        return "n/a"
    if steal_noisy(steal_pct=steal_pct):
        return "NOISY"
    if all(oks):
        return "PASS"
    return "FAIL" if not any(oks) else CROSSES


def steal_worst(*values: float | None) -> float | None:
    """The largest steal of those measured (a target judged from several windows is as noisy as its worst)."""
    present = [value for value in values if value is not None]
    return max(present) if present else None
