"""``python -m bench`` from the repo root: run the scenarios, write bench/results/<date>.{md,json} and plots.

One scenario at one size, for a profiling loop (well under a minute):
  python -m bench --only liveblog --size 1000 --layer pubsub --rounds 1

Exit code: 1 if a scenario crashed, and with ``--smoke`` also if any 100 % expectation failed
(a socket that did not connect, a frame not delivered, a frame dropped without telling the
sender). The performance targets are lines of the report's Targets table (PASS, FAIL, NOISY
or "range crosses the target"; see bench/verdicts.py), never the exit code.
"""

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from bench.context import LAYERS, SIZE_OPTION, SIZES_FULL, SIZES_SMOKE, Bench, sizes_resize, sizes_rounds
from bench.machine import machine_describe
from bench.metrics import SAMPLE_INTERVAL
from bench.plots import metrics_timeline_plot
from bench.procs import REPO, StealWindow, harness_pin, processes_reap, redis_running, rlimit_raise
from bench.report import report_write, run_stamp
from bench.scenarios import site_metrics_record
from bench.scenarios.chat import chat_run
from bench.scenarios.cursors import cursors_run
from bench.scenarios.flood import flood_run
from bench.scenarios.fragments import fragments_run
from bench.scenarios.idle import idle_run
from bench.scenarios.liveblog import liveblog_run
from bench.scenarios.overhead import overhead_run
from bench.scenarios.sketchpad import sketchpad_run
from bench.scenarios.typing import typing_run

SCENARIOS: dict[str, Callable[..., dict]] = {
    "liveblog": liveblog_run,
    "liveblog-fragments": fragments_run,
    "chat": chat_run,
    "typing": typing_run,
    "sketchpad": sketchpad_run,
    "cursors": cursors_run,
    "idle": idle_run,
    "flood": flood_run,
    "metrics-overhead": overhead_run,
}
RESULTS = REPO / "bench" / "results"


def arguments_parse(*, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="small sizes, same code paths (CI); writes to bench/results/smoke/"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable); merged into today's results",
    )
    parser.add_argument(
        "--size",
        type=size_parse,
        metavar="N",
        help="with one --only: that scenario at this one main size; writes to bench/results/sized/ "
        "(N counts: " + "; ".join(f"{name}: {what}" for name, (what, _) in SIZE_OPTION.items()) + ")",
    )
    parser.add_argument(
        "--rounds",
        type=size_parse,
        metavar="N",
        help="runs of each state where two are alternated (site and baseline, metrics on and off, the two liveblog "
        "pages); default: 3 for a site against its baseline (1 with --smoke), and the sizes' own for the others",
    )
    parser.add_argument(
        "--layer",
        choices=[*LAYERS, "both"],
        default="both",
        help="channel layer: 'both' runs the liveblog on core and pubsub and the other scenarios on pubsub "
        "(the sites' default); 'core' or 'pubsub' runs everything on that one (default: both)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy flamegraphs of a daphne process (liveblog 1,000 and chat)"
    )
    parser.add_argument(
        "--results-dir", type=Path, help="where to write the results (default bench/results, or bench/results/smoke)"
    )
    parser.add_argument(
        "--metrics-plot",
        type=Path,
        help="sample the sites' /metrics every 0.5 s and plot their open sockets and delay over the run to this PNG "
        "(docs/operating.md's picture: python -m bench --smoke --metrics-plot docs/operating-metrics.png)",
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the logs and databases of the run")
    options = parser.parse_args(argv)
    if options.size is not None and len(options.only or []) != 1:
        parser.error("--size needs exactly one --only: each scenario has a main size of its own")
    return options


def size_parse(text: str) -> int:
    """A count for --size and --rounds: a whole number of at least 1 (1000 or 1_000)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    options = arguments_parse(argv=argv)
    rlimit_raise()  # before anything starts: every child inherits it
    harness_pin()  # the harness with the clients; servers are moved to the other core
    signal.signal(signal.SIGINT, interrupt_raise)
    signal.signal(signal.SIGTERM, interrupt_raise)
    selected = options.only or list(SCENARIOS)
    sizes = SIZES_SMOKE if options.smoke else SIZES_FULL
    if options.size is not None:
        sizes = sizes_resize(sizes=sizes, scenario=selected[0], size=options.size)
    if options.rounds is not None:
        sizes = sizes_rounds(sizes=sizes, rounds=options.rounds)
    # A run at one size is a profiling loop's: kept apart from the day's results, not merged into them.
    sized = options.size is not None
    out_dir = options.results_dir or (RESULTS / "smoke" if options.smoke else RESULTS / "sized" if sized else RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    bench = Bench(
        smoke=options.smoke,
        sizes=sizes,
        layers=LAYERS if options.layer == "both" else (options.layer,),
        layer_other="pubsub" if options.layer == "both" else options.layer,
        profile=options.profile,
        workdir=workdir,
        out_dir=out_dir,
        stamp=date.today().isoformat(),
        metrics_interval=SAMPLE_INTERVAL if options.metrics_plot else None,
    )
    results: dict = {
        "started": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "smoke": options.smoke,
        "layers": list(bench.layers),
        "layer_other": bench.layer_other,
        "machine": machine_describe(),
        "scenarios": {},
        "crashes": {},
        "durations_s": {},
        "steal_pct": {},
    }
    interrupted = False
    started = time.monotonic()
    try:
        with redis_running(workdir=workdir, pinning=bench.pinning) as redis:
            bench.redis = redis
            for name in selected:
                if redis.process.poll() is not None:
                    # Every scenario needs it: the rest of the run would only wait for health checks to fail.
                    results["crashes"][name] = f"Redis exited ({redis.process.returncode}); the run stops here"
                    break
                print(f"==> bench: {name}", flush=True)
                scenario_started, steal = time.monotonic(), StealWindow()
                try:
                    results["scenarios"][name] = SCENARIOS[name](bench=bench)
                except KeyboardInterrupt:
                    raise
                except Exception:  # noqa: BLE001 - a crashed scenario is reported; the others still run
                    results["crashes"][name] = traceback.format_exc()
                    print(f"    {name} CRASHED:\n{results['crashes'][name][-2000:]}", flush=True)
                    if INTERRUPTED.is_set():
                        # The interrupt surfaced as another error (a cleanup step failing as its process died).
                        raise KeyboardInterrupt from None
                # Also after a crash: what its sites counted is its own, not the next scenario's.
                site_metrics = site_metrics_record(bench=bench, scenario=name)
                if name in results["scenarios"]:
                    results["scenarios"][name]["site_metrics"] = site_metrics
                    run_stamp(result=results["scenarios"][name], started=results["started"])
                results["durations_s"][name] = round(time.monotonic() - scenario_started, 1)
                results["steal_pct"][name] = steal.pct()
                if INTERRUPTED.is_set():
                    raise KeyboardInterrupt
                failed = [check for check in bench.checks if check["scenario"] == name and not check["ok"]]
                print(
                    f"    {name}: {results['durations_s'][name]} s, steal {results['steal_pct'][name]} %, "
                    f"{len(failed)} failed delivery checks",
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        reaped = processes_reap()
    if interrupted:
        print("==> bench: interrupted; every process started was stopped", flush=True)
    if reaped:
        print(f"==> bench: stopped what cleanup had left running: {reaped}", flush=True)
    results["duration_s"] = round(time.monotonic() - started, 1)
    results["interrupted"] = interrupted
    results["pinning"] = bench.pinning.summary()
    results["checks"] = bench.checks
    results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    if options.metrics_plot:
        timeline = [sample for site in bench.sites.values() for sample in site.metrics.timeline]
        print(f"==> bench: {metrics_timeline_plot(timeline=timeline, path=options.metrics_plot)}", flush=True)
    paths = report_write(
        results=results,
        bench=bench,
        merge=not options.smoke and not sized and (options.only is not None or options.layer != "both"),
    )
    failed_checks = [check for check in bench.checks if not check["ok"]]
    print(f"==> bench: {len(bench.checks) - len(failed_checks)}/{len(bench.checks)} delivery checks passed", flush=True)
    for check in failed_checks:
        print(f"    FAILED {check['scenario']}: {check['name']} {check['detail'][:300]}", flush=True)
    if options.smoke or sized:
        print(paths["markdown"].read_text(), flush=True)
    shown = [str(path.relative_to(REPO) if path.is_relative_to(REPO) else path) for path in paths.values()]
    print(f"==> bench: results in {', '.join(shown)}", flush=True)
    broken = bool(results["crashes"]) or interrupted or (options.smoke and bool(failed_checks))
    if broken or options.keep_workdir:
        print(f"==> bench: logs and databases kept in {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 130 if interrupted else (1 if broken else 0)


INTERRUPTED = threading.Event()


def interrupt_raise(signum, frame) -> None:
    """Ctrl-C or SIGTERM: remember it (cleanup may turn the KeyboardInterrupt into another error), then raise."""
    INTERRUPTED.set()
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
