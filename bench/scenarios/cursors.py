"""Scenario: the sketchpad's live cursors. One board on one daphne process, with watchers and
drawers sending a batch every 30 ms: first drawing alone, then with K more pages moving their
cursors 20 times a second (a page's most) for each K. Measured: the server CPU each cursor frame
costs (the step's CPU beyond drawing alone's, per frame sent and per copy delivered), every
cursor frame delivered, and the drawing's latency with cursors against without."""

from bench.context import Bench
from bench.procs import client_running, site_script, site_serving
from bench.scenarios import connect_check, per_frame_us, tracebacks_check, ws_of
from bench.scenarios.sketchpad import step_measure

SCENARIO = "cursors"
SLUG = "bench-cursors"


def cursors_run(*, bench: Bench) -> dict:
    movers_steps, watchers, drawers = bench.sizes.cursors
    site = bench.site(name="sketchpad")
    setup = site_script(site=site, module="sketchpad_setup", args=["--boards", SLUG], timeout=120)[0]
    result: dict = {"layer": bench.layer_other, "backend": setup["backend"]}
    with (
        client_running(name="cursors-client", workdir=bench.workdir, pinning=bench.pinning) as client,
        site_serving(site=site, count=1, layer=bench.layer_other, pinning=bench.pinning) as urls,
    ):
        url = urls[0]
        pids = {"daphne": site.pids[0], "redis": bench.redis.pid}

        def connect(*, group: str, count: int) -> None:
            conns = [{"url": f"{ws_of(url=url)}/ws/sketchpad/{SLUG}/", "origin": url, "room": SLUG}] * count
            answer = client.call("connect", timeout=120, group=group, conns=conns, ready="snapshot", deadline=60)
            connect_check(bench=bench, scenario=SCENARIO, what=f"{count} {group}", result=answer)

        connect(group="watchers", count=watchers)
        connect(group="drawers", count=drawers)
        board = {"name": SLUG, "drawers": "drawers", "watchers": "watchers"}
        drawing = f"{drawers} drawers, {watchers} watchers"
        alone = step_measure(
            bench=bench, client=client, boards=[board], tag="c", pids=pids, label=drawing, scenario=SCENARIO
        )
        result["drawing_alone"] = alone
        # Drawing alone's CPU a second, which each step with cursors spends too.
        base_rate = alone["server_cpu_s"]["daphne"] / alone["elapsed_s"]
        steps = []
        for number, movers in enumerate(movers_steps):
            # A board holds 40,000 points: each step starts on an empty one.
            site_script(site=site, module="sketchpad_setup", args=["--boards", SLUG], timeout=120)
            group = f"movers-{number}"
            connect(group=group, count=movers)
            label = f"{movers} cursors + {drawing}"
            step = step_measure(
                bench=bench,
                client=client,
                boards=[board],
                tag=f"c{number}",
                pids=pids,
                label=label,
                scenario=SCENARIO,
                movers=group,
            )
            cursors = step["cursors"]
            bench.check(
                scenario=SCENARIO,
                name=f"{label}: {cursors['delivered']}/{cursors['expected']} cursor frames relayed, "
                f"{cursors['echoes']} echoed, {cursors['out_of_order']} out of order",
                ok=cursors["delivered"] == cursors["expected"] > 0 and not cursors["echoes"] + cursors["out_of_order"],
                detail=f"errors {cursors['error_codes']}" if cursors["error_codes"] else "",
            )
            extra = step["server_cpu_s"]["daphne"] - base_rate * step["elapsed_s"]
            steps.append(
                step
                | {
                    "movers": movers,
                    "cursor_cpu_per_frame_us": per_frame_us(cpu_seconds=extra, frames=cursors["sent"]),
                    "cursor_cpu_per_copy_us": per_frame_us(cpu_seconds=extra, frames=cursors["delivered"]),
                }
            )
            client.call("close", timeout=60, group=group)
        result["steps"] = steps
        for group in ("drawers", "watchers"):
            client.call("close", timeout=60, group=group)
        result["server_errors"] = tracebacks_check(bench=bench, scenario=SCENARIO, site=site)
        bench.pinning.pid_check(name="sketchpad daphne", pid=site.pids[0], cpu=1)
    return result
