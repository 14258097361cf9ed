"""--size and --rounds: parsed, checked, and applied to the one scenario's main size only."""

import dataclasses

import pytest

from bench.__main__ import SCENARIOS, arguments_parse
from bench.context import SIZE_OPTION, SIZES_FULL, SIZES_SMOKE, sizes_resize, sizes_rounds


def test_size_needs_exactly_one_scenario(capsys):
    with pytest.raises(SystemExit):
        arguments_parse(argv=["--size", "1000"])
    with pytest.raises(SystemExit):
        arguments_parse(argv=["--only", "liveblog", "--only", "chat", "--size", "1000"])
    assert "--size needs exactly one --only" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["0", "-5", "many", "1.5"])
def test_size_must_be_a_positive_whole_number(text, capsys):
    with pytest.raises(SystemExit):
        arguments_parse(argv=["--only", "liveblog", "--size", text])
    assert "--size" in capsys.readouterr().err


def test_size_and_rounds_parse():
    options = arguments_parse(argv=["--only", "liveblog", "--size", "1_000", "--rounds", "1"])
    assert (options.only, options.size, options.rounds) == (["liveblog"], 1000, 1)


def test_every_scenario_has_a_size_option():
    assert set(SIZE_OPTION) == set(SCENARIOS)


@pytest.mark.parametrize("scenario", sorted(SIZE_OPTION))
def test_resize_changes_one_size_of_the_scenario(scenario):
    resized = sizes_resize(sizes=SIZES_FULL, scenario=scenario, size=7)
    changed = [
        field.name
        for field in dataclasses.fields(resized)
        if getattr(resized, field.name) != getattr(SIZES_FULL, field.name)
    ]
    assert len(changed) == 1
    assert "7" in str(getattr(resized, changed[0]))


def test_resize_values():
    assert sizes_resize(sizes=SIZES_FULL, scenario="liveblog", size=1000).liveblog_sockets == (1000,)
    assert sizes_resize(sizes=SIZES_FULL, scenario="idle", size=500).idle_counts == (500,)
    assert sizes_resize(sizes=SIZES_FULL, scenario="cursors", size=3).cursors == ((3,), 20, 2)
    assert sizes_resize(sizes=SIZES_FULL, scenario="typing", size=5).typing == (5, 5, 10.0)
    assert sizes_resize(sizes=SIZES_FULL, scenario="metrics-overhead", size=200).overhead == (200, 5, 80, 8.0)


def test_rounds_apply_to_every_alternation():
    sizes = sizes_rounds(sizes=SIZES_FULL, rounds=1)
    assert (sizes.baseline_rounds, sizes.overhead[1], sizes.overhead_instructions[1], sizes.fragments[1]) == (
        1,
        1,
        1,
        1,
    )
    assert sizes.overhead[0] == SIZES_FULL.overhead[0]
    assert sizes.overhead_instructions[::2] == SIZES_FULL.overhead_instructions[::2]


def test_full_sizes_alternate_site_and_baseline_three_times():
    assert SIZES_FULL.baseline_rounds >= 3
    assert SIZES_SMOKE.baseline_rounds >= 1
