"""Scenario metrics-overhead: what counting costs on the per-frame path. The liveblog's fan-out
(its two daphne processes, its posts from another process) measured with metrics on (the
default) and off (DJANGO_METRICS=0), alternated in one run, the order flipped each round so that
a drift of the machine falls on both alike; the server CPU per delivered frame of each, and the
ratio on/off round by round: its median, range and interquartile range.

The runs are long (more posts, at a higher rate, than the liveblog scenario's) because the CPU
is read in 10 ms ticks and a neighbour's load comes and goes: over windows of ~1.5 s of CPU one
state's own runs spread by up to 28 %, far more than the 3 % to judge. Part of that spread is the
server's own: under this load each daphne process runs a full collection of Python's GC every ~3 s,
of 60-115 ms with its 500 sockets, so a run's window holds 3 or 4 of them.

Counted in CPU instructions instead (valgrind's callgrind, which a neighbour's load does not change:
one daphne process, 200 or 500 sockets, each post fanned out before the next), counting costs about
1 % of a frame's ~320,000 instructions: ~2,000 in SocketMeter.event_sent (a clock reading and a
bucket), ~600 in counting the send itself."""

from contextlib import ExitStack
from functools import partial

from bench.context import Bench
from bench.procs import BenchSite, LineProcess, client_running, publisher_running, site_serving
from bench.scenarios import per_frame_compare, runs_alternate, tracebacks_check
from bench.scenarios.liveblog import SITE_PROCESSES, SLUG, fanout_measure, liveblog_conns, posts_publish
from bench.verdicts import range_judge

SCENARIO = "metrics-overhead"
# The target: counting costs at most 3 % of the CPU per frame.
TARGET = 0.03


def overhead_run(*, bench: Bench) -> dict:
    sockets, rounds, posts, rate = bench.sizes.overhead
    site = bench.site(name="liveblog")
    with client_running(name="overhead-client", workdir=bench.workdir, pinning=bench.pinning) as client:
        runs = runs_alternate(
            states=("on", "off"),
            rounds=rounds,
            measure=partial(
                overhead_measure, bench=bench, client=client, site=site, sockets=sockets, posts=posts, rate=rate
            ),
        )
    figures = per_frame_compare(runs=runs, over=("on", "off"))
    return {
        "layer": bench.layer_other,
        "sockets": sockets,
        "posts": posts,
        "rate": rate,
        "rounds": rounds,
        "runs": runs,
        **figures,
        "verdict": range_judge(
            ratio=figures["ratio"], within=(1 - TARGET, 1 + TARGET), steal_pct=figures["steal_pct_max"]
        ),
    }


def overhead_measure(
    *,
    bench: Bench,
    client: LineProcess,
    site: BenchSite,
    sockets: int,
    posts: int,
    rate: float,
    state: str,
    round_number: int,
) -> dict:
    """One fan-out on freshly started processes with metrics ``state`` "on" or "off"."""
    on = state == "on"
    label = f"metrics {state} #{round_number}"
    site.metrics_on = on
    try:
        with ExitStack() as stack:
            urls = stack.enter_context(
                site_serving(site=site, count=SITE_PROCESSES, layer=bench.layer_other, pinning=bench.pinning)
            )
            publisher = stack.enter_context(publisher_running(site=site, slug=SLUG))
            row = fanout_measure(
                bench=bench,
                client=client,
                label=label,
                conns=liveblog_conns(
                    urls=urls, sockets=sockets, since=publisher.call("status", timeout=60)["last_seq"]
                ),
                posts=posts,
                rate=rate,
                publish=partial(posts_publish, process=publisher, op="posts"),
                server_pids={f"daphne-{number}": pid for number, pid in enumerate(site.pids)},
                redis=bench.redis,
                metrics_urls=urls if on else None,
                scenario=SCENARIO,
            )
            row["server_errors"] = tracebacks_check(
                bench=bench, scenario=SCENARIO, site=site, name=f"{label}: no tracebacks"
            )
    finally:
        site.metrics_on = True
    return row
