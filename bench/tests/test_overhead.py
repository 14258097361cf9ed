"""The metrics-overhead target, judged on instructions counted by callgrind: its dump read, its
ratio's verdict, and the Targets table taking it, not the CPU seconds' ratio."""

import pytest

from bench.procs import callgrind_totals
from bench.scenarios.overhead import instructions_judge
from bench.stats import ratios_summary
from bench.targets import targets_evaluate
from bench.verdicts import CROSSES

# The head of a dump written by ``callgrind_control --dump`` (its cost lines cut).
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  /work/main/.venv/bin/python -m realtime_common.serve -b 127.0.0.1 -p 35347 config.asgi:application
part: 1

desc: I1 cache:
desc: Timerange: Basic block 0 - 2214420345
desc: Trigger: Client Request: dump

positions: line
events: Ir
summary: 1299928811

fl=(1) ???
fn=(1) 0x000000000401a6c0
0 3
totals: 1299928811
"""


def test_callgrind_totals_reads_the_totals_line():
    assert callgrind_totals(text=DUMP) == 1_299_928_811


def test_callgrind_totals_falls_back_on_the_summary_line():
    assert callgrind_totals(text=DUMP.replace("totals: 1299928811\n", "")) == 1_299_928_811


def test_callgrind_totals_refuses_what_is_not_a_dump():
    with pytest.raises(ValueError, match="not a callgrind dump"):
        callgrind_totals(text="==123== Callgrind, a call-graph generating cache profiler\n")


def ratio_of(*values: float) -> dict:
    return ratios_summary(numerators=list(values), denominators=[1.0] * len(values))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((1.010, 1.011, 1.013), "PASS"),
        ((0.970, 1.030), "PASS"),  # at the bounds, not over them
        ((1.031, 1.05, 1.06), "FAIL"),
        ((1.02, 1.04), CROSSES),
    ],
)
def test_instructions_judge_on_the_whole_range(values, expected):
    assert instructions_judge(ratio=ratio_of(*values)) == expected


def overhead_results(*, instruction_ratios: list[float], cpu_ratios: list[float], steal: float) -> dict:
    per_frame = [
        {"label": f"instructions, metrics on #{n}", "instructions": 1, "frames": 1, "per_frame": 1} for n in (1, 2, 3)
    ]
    return {
        "smoke": False,
        "steal_pct": {"metrics-overhead": steal},
        "scenarios": {
            "metrics-overhead": {
                "ratio": ratio_of(*cpu_ratios),
                "steal_pct_max": steal,
                "instructions": {
                    "sockets": 200,
                    "posts": 20,
                    "rounds": len(instruction_ratios),
                    "runs": {"on": per_frame, "off": per_frame},
                    "ratio": ratio_of(*instruction_ratios),
                },
            }
        },
    }


def overhead_target(*, results: dict) -> dict:
    (target,) = [target for target in targets_evaluate(results=results) if target["scenario"] == "metrics-overhead"]
    return target


def test_target_judged_on_instructions_not_on_cpu_seconds():
    # The CPU seconds' rounds spread 0.99 - 1.16 (a GC collection more or less): not what is judged.
    target = overhead_target(
        results=overhead_results(instruction_ratios=[1.010, 1.011, 1.012], cpu_ratios=[0.99, 1.05, 1.16], steal=0.0)
    )
    assert target["verdict"] == "PASS"
    assert target["target"].startswith("CPU instructions per frame")
    assert target["measured"].startswith("1.0110 (range 1.0100 – 1.0120")


def test_steal_does_not_make_counted_instructions_noisy():
    target = overhead_target(
        results=overhead_results(instruction_ratios=[1.05, 1.06, 1.07], cpu_ratios=[1.0, 1.0, 1.0], steal=50.0)
    )
    assert target["verdict"] == "FAIL"
