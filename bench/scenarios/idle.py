"""Scenario 4, idle: memory per connection and idle CPU with thousands of open liveblog sockets
on one daphne process, against the bare websockets server with as many, the two alternated;
then one post that reaches them all."""

import time
from collections.abc import Callable
from functools import partial

from bench.context import Bench
from bench.procs import (
    LineProcess,
    StealWindow,
    bare_running,
    client_running,
    cpu_rate,
    cpu_settle,
    proc_rss_bytes,
    publisher_running,
    site_serving,
)
from bench.scenarios import connect_check, delivery_check, runs_alternate, tracebacks_check, ws_of
from bench.scenarios.liveblog import SLUG, liveblog_conns
from bench.stats import ratio, ratios_summary

SCENARIO = "idle"
# Sockets opened first and closed again, so that code and caches loaded on first use
# do not count as the first real sockets' memory.
WARMUP_SOCKETS = 20
# Handshakes in flight at once: a burst as from many pages opening together, well within daphne's listen backlog (realtime_common.serve).
CONNECT_CONCURRENCY = 100


def idle_run(*, bench: Bench) -> dict:
    """The site and the bare server alternated (``runs_alternate``), each run on a freshly started
    process (memory a process freed stays in its heap, so a second run on it would grow less)."""
    result: dict = {"layer": bench.layer_other, "counts": list(bench.sizes.idle_counts)}
    with client_running(name="idle-client", workdir=bench.workdir, pinning=bench.pinning) as client:
        runs = runs_alternate(
            states=("site", "bare"),
            rounds=bench.sizes.baseline_rounds,
            measure=partial(server_measure, bench=bench, client=client, result=result),
        )
    result["runs"] = runs
    result["memory_ratios"] = []
    for index, count in enumerate(bench.sizes.idle_counts):
        site_rows = [run["rows"][index] for run in runs["site"]]
        bare_rows = [run["rows"][index] for run in runs["bare"]]
        for site_row, bare_row in zip(site_rows, bare_rows, strict=True):
            site_row["memory_ratio_to_bare"] = ratio(
                numerator=site_row["rss_per_socket_kb"], denominator=bare_row["rss_per_socket_kb"]
            )
        result["memory_ratios"].append(
            {
                "count": count,
                "ratio": ratios_summary(
                    numerators=[row["rss_per_socket_kb"] for row in site_rows],
                    denominators=[row["rss_per_socket_kb"] for row in bare_rows],
                ),
                "steal_pct_max": max(row["steal_pct"] for row in site_rows + bare_rows),
            }
        )
    return result


def server_measure(*, bench: Bench, client: LineProcess, result: dict, state: str, round_number: int) -> dict:
    """One run of ``counts_measure`` on a fresh process: the site's ("site", whose layer and
    tracebacks go in ``result``) or the bare server's ("bare")."""
    label = f"{state} #{round_number}"
    if state == "bare":
        with bare_running(workdir=bench.workdir, pinning=bench.pinning) as bare:
            measured = counts_measure(
                bench=bench,
                client=client,
                label=label,
                pid=bare.pid,
                conns=lambda count: [{"url": f"{ws_of(url=bare.url)}/ws/all/"}] * count,
                publish=lambda: client.call(
                    "publish", timeout=60, url=f"{ws_of(url=bare.url)}/pub/", room="all", count=1, rate=1
                ),
            )
        return {"round": round_number, **measured}
    site = bench.site(name="liveblog")
    with (
        site_serving(site=site, count=1, layer=bench.layer_other, pinning=bench.pinning) as urls,
        publisher_running(site=site, slug=SLUG) as publisher,
    ):
        result["backend"] = publisher.call("status", timeout=60)["backend"]
        url = urls[0]
        measured = counts_measure(
            bench=bench,
            client=client,
            label=label,
            pid=site.pids[0],
            # From the current seq, as a page would: earlier posts are not replayed to the new sockets.
            conns=lambda count: liveblog_conns(
                urls=[url], sockets=count, since=publisher.call("status", timeout=60)["last_seq"]
            ),
            publish=lambda: publisher.call("posts", timeout=60, count=1, rate=1),
        )
        result["server_errors"] = result.get("server_errors", "") + tracebacks_check(
            bench=bench, scenario=SCENARIO, site=site, name=f"{label}: no server tracebacks"
        )
    return {"round": round_number, **measured}


def counts_measure(
    *,
    bench: Bench,
    client: LineProcess,
    label: str,
    pid: int,
    conns: Callable[[int], list[dict]],
    publish: Callable[[], dict],
) -> dict:
    """Open sockets up to each count in turn (adding to those open), then: RSS, idle CPU, one broadcast."""
    sizes = bench.sizes
    warmup = client.call("connect", timeout=120, group="warmup", conns=conns(WARMUP_SOCKETS), deadline=60)
    client.call("close", timeout=60, group="warmup")
    cpu_settle(pids={"server": pid}, below=0.05, window=0.5, timeout=5)
    rss_base = proc_rss_bytes(pid=pid)
    rows = []
    open_now = 0
    for count in sizes.idle_counts:
        connect = client.call(
            "connect",
            timeout=600,
            group="idle",
            conns=conns(count - open_now),
            concurrency=CONNECT_CONCURRENCY,
            deadline=300,
        )
        open_now = connect["group_size"]
        connect_check(bench=bench, scenario=SCENARIO, what=f"{label}: {count} sockets", result=connect)
        steal = StealWindow()
        # The handshakes' work trails the last handshake a little: wait (bounded) for the process to go quiet.
        settled = cpu_settle(pids={"server": pid}, below=0.10, window=1.0, timeout=15)
        rss = proc_rss_bytes(pid=pid)
        idle = cpu_rate(pids={"server": pid}, seconds=sizes.idle_seconds)
        client.call("expect_posts", timeout=30, groups=["idle"], posts=1)
        started = time.monotonic()
        published = publish()
        answer = client.call("expect_wait", timeout=120, wait=60)
        delivery_check(bench=bench, scenario=SCENARIO, what=f"{label}: one post to {open_now} sockets", answer=answer)
        rows.append(
            {
                "count": count,
                "open": open_now,
                "connect": {
                    key: connect[key]
                    for key in ("requested", "connected", "failed", "failures", "elapsed_s", "per_second")
                },
                "settled": settled is not None,
                "rss_mb": round(rss / 2**20, 1),
                "rss_base_mb": round(rss_base / 2**20, 1),
                "rss_per_socket_kb": round((rss - rss_base) / open_now / 1024, 2) if open_now else None,
                "idle_core_pct": round(100 * idle, 2),
                # From the last handshake to the broadcast's last frame: the memory, idle CPU and one post.
                "steal_pct": steal.pct(),
                "broadcast": {
                    "expected": answer["expected"],
                    "delivered": answer["delivered"],
                    "delivery_pct": answer["delivery_pct"],
                    "latency_ms": answer["latency_ms"],
                    "time_to_last_ms": answer["latency_ms"]["max"]
                    if answer["delivered"] == answer["expected"]
                    else None,
                    "elapsed_s": round(time.monotonic() - started, 3),
                    "publish": {key: value for key, value in published.items() if key != "client_cpu"},
                },
            }
        )
    client.call("close", timeout=300, group="idle")
    return {"warmup": warmup["connected"], "rows": rows}
