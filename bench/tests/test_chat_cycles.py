"""The big room's action cycles (bench/scenarios/chat.py): the median cycle of each action."""

from bench.scenarios.chat import ACTIONS, actions_median


def cycle(*, cpu_ms: float) -> dict:
    return {label: {"daphne_cpu_ms": cpu_ms, "label": f"{label} at {cpu_ms}"} for label, _ in ACTIONS}


def test_each_action_s_median_is_one_cycle_s_figures_the_lower_of_the_middle_two():
    cycles = [cycle(cpu_ms=90.0), cycle(cpu_ms=70.0), None, cycle(cpu_ms=80.0), cycle(cpu_ms=200.0)]
    median = actions_median(cycles=cycles)
    assert [label for label, _ in ACTIONS] == list(median)
    assert median["join"] == {"daphne_cpu_ms": 80.0, "label": "join at 80.0"}  # of 70, 80, 90, 200; None left out


def test_no_cycle_no_median():
    assert actions_median(cycles=[None, None]) == {}
