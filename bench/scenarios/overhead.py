"""Scenario metrics-overhead: what counting costs on the per-frame path. The liveblog's fan-out
(its two daphne processes, its posts from another process) measured with metrics on (the
default) and off (DJANGO_METRICS=0), alternated in one run, the order flipped each round so that
a drift of the machine falls on both alike; the server CPU per delivered frame of each, and the
ratio on/off with its range."""

import statistics
from contextlib import ExitStack
from functools import partial

from bench.context import Bench
from bench.procs import BenchSite, LineProcess, client_running, publisher_running, site_serving
from bench.scenarios import tracebacks_check
from bench.scenarios.liveblog import SITE_PROCESSES, SLUG, fanout_measure, liveblog_conns, posts_publish

SCENARIO = "metrics-overhead"
# The target: counting costs at most 3 % of the CPU per frame.
TARGET = 0.03


def overhead_run(*, bench: Bench) -> dict:
    sockets, rounds = bench.sizes.overhead
    site = bench.site(name="liveblog")
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    with client_running(name="overhead-client", workdir=bench.workdir, pinning=bench.pinning) as client:
        for number in range(rounds):
            for state in ("on", "off") if number % 2 == 0 else ("off", "on"):
                runs[state].append(
                    overhead_measure(
                        bench=bench,
                        client=client,
                        site=site,
                        sockets=sockets,
                        on=state == "on",
                        round_number=number + 1,
                    )
                )
    return {
        "layer": bench.layer_other,
        "sockets": sockets,
        "posts": bench.sizes.liveblog_posts,
        "rounds": rounds,
        "runs": runs,
        **overhead_figures(runs=runs),
    }


def overhead_measure(
    *, bench: Bench, client: LineProcess, site: BenchSite, sockets: int, on: bool, round_number: int
) -> dict:
    """One fan-out on freshly started processes with metrics ``on`` or off."""
    label = f"metrics {'on' if on else 'off'} #{round_number}"
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
                publish=partial(posts_publish, bench=bench, process=publisher, op="posts"),
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


def overhead_figures(*, runs: dict[str, list[dict]]) -> dict:
    """Median and range of the CPU per frame on and off, the ratio on/off (of the medians, and
    its range: the best and worst pairing of the two ranges) and its verdict against the target."""
    per_frame = {
        state: [row["server_cpu_per_frame_us"] for row in rows if row["server_cpu_per_frame_us"] is not None]
        for state, rows in runs.items()
    }
    if not per_frame["on"] or not per_frame["off"]:
        return {"per_frame_us": per_frame, "ratio": None, "verdict": "n/a", "steal_pct_max": None}
    on, off = per_frame["on"], per_frame["off"]
    low, high = min(on) / max(off), max(on) / min(off)
    if 1 - TARGET <= low and high <= 1 + TARGET:
        verdict = "PASS"
    elif low > 1 + TARGET:
        verdict = "FAIL"
    else:
        verdict = "range crosses the target"
    return {
        "per_frame_us": {
            state: {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}
            for state, values in per_frame.items()
        },
        "ratio": {
            "median": round(statistics.median(on) / statistics.median(off), 4),
            "low": round(low, 4),
            "high": round(high, 4),
        },
        "verdict": verdict,
        "steal_pct_max": max(row["server_cpu_steal_pct"] for rows in runs.values() for row in rows),
    }
