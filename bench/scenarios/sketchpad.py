"""Scenario 3, sketchpad: one board with watchers and a growing number of drawers, each
sending a draw batch every 30 ms like a page does; then several boards at once. One daphne
process (the board's consumer is synchronous: one thread for all its handlers)."""

import time

from bench.context import Bench
from bench.procs import LineProcess, client_running, cpu_delta, cpu_snapshot, site_script, site_serving
from bench.scenarios import connect_check, tracebacks_check, ws_of
from bench.stats import p99_within

SCENARIO = "sketchpad"
# A page sends its points about every 30 ms while the pointer moves.
BATCH_INTERVAL = 0.030
# A new stroke every 100 batches (3 s of drawing), the last batch of each with done: true.
FRAMES_PER_STROKE = 100
# The pass mark for "the largest number of drawers".
DRAWERS_P99_MS = 100.0


def sketchpad_run(*, bench: Bench) -> dict:
    sizes = bench.sizes
    site = bench.site(name="sketchpad")
    boards_count, multi_drawers, multi_watchers = sizes.sketch_multi
    slugs = [f"bench-{number}" for number in range(max(1, boards_count))]
    setup = site_script(site=site, module="sketchpad_setup", args=["--boards", *slugs], timeout=120)[0]
    result: dict = {"layer": bench.layer_other, "backend": setup["backend"], "interval_ms": BATCH_INTERVAL * 1000}
    with (
        client_running(name="sketchpad-client", workdir=bench.workdir, pinning=bench.pinning) as client,
        site_serving(site=site, count=1, layer=bench.layer_other, pinning=bench.pinning) as urls,
    ):
        url = urls[0]
        pids = {"daphne": site.pids[0], "redis": bench.redis.pid}

        def board_conns(*, slug: str, count: int) -> list[dict]:
            # "room": the board, so that a frame relayed to another board's socket counts as misrouted.
            return [
                {"url": f"{ws_of(url=url)}/ws/sketchpad/{slug}/", "origin": url, "room": slug} for _ in range(count)
            ]

        watchers = client.call(
            "connect",
            timeout=120,
            group="watchers",
            conns=board_conns(slug=slugs[0], count=sizes.sketch_watchers),
            ready="snapshot",
            deadline=60,
        )
        connect_check(bench=bench, scenario=SCENARIO, what=f"{sizes.sketch_watchers} watchers", result=watchers)
        steps = []
        for number, drawers in enumerate(sizes.sketch_drawers):
            site_script(site=site, module="sketchpad_setup", args=["--boards", slugs[0]], timeout=120)
            group = f"drawers-{number}"
            connect = client.call(
                "connect",
                timeout=120,
                group=group,
                conns=board_conns(slug=slugs[0], count=drawers),
                ready="snapshot",
                deadline=60,
            )
            connect_check(bench=bench, scenario=SCENARIO, what=f"{drawers} drawers", result=connect)
            steps.append(
                step_measure(
                    bench=bench,
                    client=client,
                    boards=[{"name": slugs[0], "drawers": group, "watchers": "watchers"}],
                    tag=f"t{number}",
                    pids=pids,
                    label=f"{drawers} drawers, {watchers['connected']} watchers",
                )
                | {"drawers": connect["connected"], "watchers": watchers["connected"]}
            )
            client.call("close", timeout=60, group=group)
        client.call("close", timeout=60, group="watchers")
        result["steps"] = steps
        held = [step["drawers"] for step in steps if p99_within(latency=step["latency_ms"], limit_ms=DRAWERS_P99_MS)]
        result["max_drawers_p99_within_100ms"] = max(held, default=0)
        site_script(site=site, module="sketchpad_setup", args=["--boards", *slugs[:boards_count]], timeout=120)
        boards = []
        for number, slug in enumerate(slugs[:boards_count]):
            for role, count in (("drawers", multi_drawers), ("watchers", multi_watchers)):
                connect = client.call(
                    "connect",
                    timeout=120,
                    group=f"m{role}-{number}",
                    conns=board_conns(slug=slug, count=count),
                    ready="snapshot",
                    deadline=60,
                )
                connect_check(bench=bench, scenario=SCENARIO, what=f"board {slug}: {count} {role}", result=connect)
            boards.append({"name": slug, "drawers": f"mdrawers-{number}", "watchers": f"mwatchers-{number}"})
        result["boards"] = step_measure(
            bench=bench,
            client=client,
            boards=boards,
            tag="m",
            pids=pids,
            label=f"{boards_count} boards x ({multi_drawers} drawers + {multi_watchers} watchers)",
        ) | {"boards": boards_count, "drawers_each": multi_drawers, "watchers_each": multi_watchers}
        for board in boards:
            client.call("close", timeout=60, group=board["drawers"])
            client.call("close", timeout=60, group=board["watchers"])
        result["server_errors"] = tracebacks_check(bench=bench, scenario=SCENARIO, site=site)
        bench.pinning.pid_check(name="sketchpad daphne", pid=site.pids[0], cpu=1)
    return result


def step_measure(
    *,
    bench: Bench,
    client: LineProcess,
    boards: list[dict],
    tag: str,
    pids: dict[str, int],
    label: str,
    scenario: str = SCENARIO,
    movers: str | None = None,
) -> dict:
    """One step of drawing (the client's sketch_step), with the group ``movers`` moving their
    cursors on the first board meanwhile if given: its "cursors" (scenarios/cursors.py)."""
    sizes = bench.sizes
    before, started = cpu_snapshot(pids=pids), time.monotonic()
    answer = client.call(
        "sketch_step",
        timeout=sizes.sketch_step_seconds + 120,
        boards=boards,
        tag=tag,
        seconds=sizes.sketch_step_seconds,
        interval=BATCH_INTERVAL,
        frames_per_stroke=FRAMES_PER_STROKE,
        drain=3.0,
        movers=movers,
    )
    used, elapsed = cpu_delta(before=before, after=cpu_snapshot(pids=pids)), time.monotonic() - started
    bench.check(
        scenario=scenario,
        name=f"{label}: {answer['delivered']}/{answer['expected']} relayed, {answer['echoes']} echoed to their sender",
        ok=answer["delivered"] == answer["expected"] and answer["echoes"] == 0 and answer["expected"] > 0,
        detail=f"errors {answer['error_codes']}" if answer["error_codes"] else "",
    )
    return {
        "label": label,
        "sent": answer["sent"],
        "batches_per_s_per_drawer": answer["batches_per_s_per_drawer"],
        "expected": answer["expected"],
        "delivered": answer["delivered"],
        "loss_pct": answer["loss_pct"],
        "duplicates": answer["duplicates"],
        "echoes": answer["echoes"],
        "latency_ms": answer["latency_ms"],
        "per_board": answer["boards"],
        "error_codes": answer["error_codes"],
        "server_core_pct": {name: round(100 * seconds / elapsed, 1) for name, seconds in used.items()},
        "server_cpu_s": used,
        "elapsed_s": round(elapsed, 3),
        "server_cpu_per_frame_us": round(used["daphne"] / answer["delivered"] * 1e6, 2)
        if answer["delivered"]
        else None,
        "client_cpu_pct": answer["client_cpu_pct"],
        "cursors": answer["cursors"],
    }
