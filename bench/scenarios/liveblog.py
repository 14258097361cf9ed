"""Scenario 1, liveblog fan-out: N sockets over two daphne processes, posts saved by another
process at a steady rate, on each channel layer; the same sockets and publish pattern against
the bare websockets server, alternated with the site's runs of the same size, and against the
raw ASGI app; and redis-benchmark's PUBLISH rate. The same fan-out with the site served by
uvicorn and by granian (OTHER_SERVERS), alternated with the bare server, at one size."""

import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial

from bench.context import Bench, profile_record, profiler_running
from bench.metrics import metrics_summary, metrics_url
from bench.procs import (
    LineProcess,
    Redis,
    Server,
    StealWindow,
    bare_running,
    client_running,
    cpu_delta,
    cpu_snapshot,
    publisher_running,
    raw_asgi_running,
    redis_benchmark,
    site_serving,
)
from bench.scenarios import (
    connect_check,
    delivery_check,
    per_frame_compare,
    per_frame_us,
    runs_alternate,
    tracebacks_check,
    ws_of,
)
from bench.stats import backlog_verdict
from realtime_common.testing.metrics import metrics_delta, metrics_scrape, metrics_sum

SCENARIO = "liveblog"
SLUG = "bench"
# Two daphne processes, the sockets split evenly, as the issue asks.
SITE_PROCESSES = 2
# Measured alternatives to daphne (realtime_common.testing.servers.server_command starts them), as many processes, on the
# second layer (pubsub), at OTHER_SERVERS_SOCKETS (the smallest size where a run has no such size):
# about a minute and a half of a full run.
OTHER_SERVERS = ("uvicorn", "granian")
OTHER_SERVERS_SOCKETS = 1000


def liveblog_run(*, bench: Bench) -> dict:
    sizes = bench.sizes
    result = {
        "sockets": list(sizes.liveblog_sockets),
        "posts": sizes.liveblog_posts,
        "rate": sizes.liveblog_rate,
        "rounds": sizes.baseline_rounds,
        "layers": {},
        "servers": {},
        "baselines": {},
    }
    others_at = (
        OTHER_SERVERS_SOCKETS if OTHER_SERVERS_SOCKETS in sizes.liveblog_sockets else min(sizes.liveblog_sockets)
    )
    with client_running(name="liveblog-client", workdir=bench.workdir, pinning=bench.pinning) as client:
        # The bare server runs beside the site's processes, so that the two alternate run by run
        # (the ratio's target is against it); the raw ASGI app is shown, not judged, so it runs once.
        with bare_running(workdir=bench.workdir, pinning=bench.pinning) as bare:
            for layer in bench.layers:
                result["layers"][layer] = layer_run(bench=bench, client=client, layer=layer, bare=bare)
            for server in OTHER_SERVERS:
                result["servers"][server] = layer_run(
                    bench=bench,
                    client=client,
                    layer=bench.layer_other,
                    bare=bare,
                    server=server,
                    socket_counts=(others_at,),
                )
        with raw_asgi_running(workdir=bench.workdir, pinning=bench.pinning) as server:
            rows = [
                baseline_measure(bench=bench, client=client, server=server, name="raw_asgi", sockets=sockets)
                for sockets in sizes.liveblog_sockets
            ]
            result["baselines"]["raw_asgi"] = {"processes": 1, "rows": rows}
        result["redis_benchmark"] = redis_benchmark(port=bench.redis.port, requests=sizes.redis_benchmark_requests)
        result["client_cpu_log"] = client.cpu_log[-50:]
        result["pinned_at_end"] = bench.pinning.pid_check(name="liveblog-client", pid=client.pid, cpu=0)
    return result


def layer_run(
    *,
    bench: Bench,
    client: LineProcess,
    layer: str,
    bare: Server,
    server: str = "daphne",
    socket_counts: tuple[int, ...] | None = None,
) -> dict:
    """At each size (``socket_counts``, or the run's), the site on ``layer`` served by ``server`` and the bare
    server alternated (``runs_alternate``): the ratio of their CPU per frame round by round, its median
    and range (``per_frame_compare``). daphne's first round at 1,000 sockets is profiled."""
    site = bench.site(name="liveblog")
    named = "" if server == "daphne" else f"{server} "
    with ExitStack() as stack:
        urls = stack.enter_context(
            site_serving(site=site, count=SITE_PROCESSES, layer=layer, pinning=bench.pinning, server=server)
        )
        publisher = stack.enter_context(publisher_running(site=site, slug=SLUG))
        status = publisher.call("status", timeout=60)
        runs: dict[str, list[dict]] = {"site": [], "bare": []}
        ratios = []
        socket_counts = socket_counts or bench.sizes.liveblog_sockets
        profile_at = (1000 if 1000 in socket_counts else socket_counts[0]) if server == "daphne" else None
        for sockets in socket_counts:

            def measure(*, state: str, round_number: int) -> dict:
                if state == "bare":
                    row = baseline_measure(
                        bench=bench, client=client, server=bare, name=f"bare ({layer})", sockets=sockets
                    )
                else:
                    profiled = sockets == profile_at and round_number == 1
                    row = fanout_measure(
                        bench=bench,
                        client=client,
                        label=f"{named}{layer} N={sockets}",
                        conns=liveblog_conns(
                            urls=urls, sockets=sockets, since=publisher.call("status", timeout=60)["last_seq"]
                        ),
                        posts=bench.sizes.liveblog_posts,
                        rate=bench.sizes.liveblog_rate,
                        publish=partial(posts_publish, process=publisher, op="posts"),
                        server_pids={f"{server}-{number}": pid for number, pid in enumerate(site.pids)},
                        redis=bench.redis,
                        profile_name=f"liveblog-{sockets}-{layer}" if profiled else None,
                        metrics_urls=urls,
                    )
                return {**row, "label": f"{row['label']} #{round_number}", "round": round_number}

            alternated = runs_alternate(states=("site", "bare"), rounds=bench.sizes.baseline_rounds, measure=measure)
            for state, rows in alternated.items():
                runs[state] += rows
            ratios.append({"sockets": sockets, **per_frame_compare(runs=alternated, over=("site", "bare"))})
        for number, pid in enumerate(site.pids):
            bench.pinning.pid_check(name=f"liveblog {server}-{number}", pid=pid, cpu=1)
        errors = tracebacks_check(
            bench=bench, scenario=SCENARIO, site=site, name=f"{named}{layer}: no server tracebacks"
        )
    return {
        "server": server,
        "layer": layer,
        "backend": status["backend"],
        "processes": SITE_PROCESSES,
        "rows": runs["site"],
        "bare_rows": runs["bare"],
        "ratios": ratios,
        "server_errors": errors,
    }


def baseline_measure(*, bench: Bench, client: LineProcess, server: Server, name: str, sockets: int) -> dict:
    """The same fan-out through a baseline server: every socket in one room, the posts sent
    through the server's publisher socket by the load client."""
    publish = partial(posts_publish, process=client, op="publish", url=f"{ws_of(url=server.url)}/pub/", room="all")
    return fanout_measure(
        bench=bench,
        client=client,
        label=f"{name} N={sockets}",
        conns=[{"url": f"{ws_of(url=server.url)}/ws/all/"} for _ in range(sockets)],
        posts=bench.sizes.liveblog_posts,
        rate=bench.sizes.liveblog_rate,
        publish=publish,
        server_pids={name: server.pid},
        redis=None,
    )


def posts_publish(*, process: LineProcess, op: str, count: int, rate: float, **route: str) -> dict:
    """``count`` posts, ``rate`` a second: ``op`` "posts" of the site's publisher, or "publish" of
    the load client through a baseline server (``route``: the url and room of its publisher socket)."""
    # Time for every post at the rate, and a minute more.
    return process.call(op, timeout=60 + count / rate, count=count, rate=rate, **route)


def liveblog_conns(
    *, urls: list[str], sockets: int, since: int | None, slug: str = SLUG, fragments: bool = False
) -> list[dict]:
    """Sockets split evenly over the processes, as a load balancer would, each resuming from
    ``since`` as the JSON page does (it connects with the seq it rendered). Without ``since`` some
    versions of the site went live only once the consumer had read the seq, after the handshake,
    so a post committed just after the handshake could count as seen already. With ``fragments``,
    the fragments page's socket, which takes no ``since``: it sends the whole list on connect."""
    path = "fragments/" if fragments else ""
    query = f"?since={since}" if since is not None else ""
    return [
        {
            "url": f"{ws_of(url=urls[number % len(urls)])}/ws/liveblog/{slug}/{path}{query}",
            "origin": urls[number % len(urls)],
        }
        for number in range(sockets)
    ]


def fanout_measure(
    *,
    bench: Bench,
    client: LineProcess,
    label: str,
    conns: list[dict],
    posts: int,
    rate: float,
    publish: Callable[..., dict],
    server_pids: dict[str, int],
    redis: Redis | None,
    profile_name: str | None = None,
    metrics_urls: list[str] | None = None,
    scenario: str = SCENARIO,
    ready: str = "open",
) -> dict:
    """Connect the sockets (``ready``: as the client's Opening; "snapshot" waits for the fragments
    page's list), publish ``posts`` at ``rate`` a second with ``publish(count=, rate=)``, wait
    (bounded) for every frame; the server CPU between just before the first post and the last
    frame (or the deadline). With ``metrics_urls``
    (the site's processes), what their metrics counted over the same posts, checked against the client's."""
    sizes = bench.sizes
    connect = client.call(
        "connect", timeout=300, group="fanout", conns=conns, concurrency=100, deadline=240, ready=ready
    )
    connect_check(bench=bench, scenario=scenario, what=f"{label} connect", result=connect)
    try:
        client.call("expect_posts", timeout=30, groups=["fanout"], posts=posts)
        pids = {**server_pids, **({"redis": redis.pid} if redis else {})}
        commands_before = redis.commands_processed() if redis else None
        # Scraped outside the CPU window: a scrape is not the fan-out's cost.
        metrics_before = [metrics_scrape(url=metrics_url(url=url)) for url in metrics_urls or []]
        client_before = client.call("status", timeout=30)["cpu_seconds"]
        steal = StealWindow()
        before, started = cpu_snapshot(pids=pids), time.monotonic()
        profile_pid = next(iter(server_pids.values()))
        seconds = sizes.profile_seconds if profile_name else 0
        with profiler_running(bench=bench, pid=profile_pid, name=profile_name, seconds=seconds) as profile:
            published = publish(count=posts, rate=rate)
            wait = client.call("expect_wait", timeout=sizes.liveblog_drain + 60, wait=sizes.liveblog_drain)
            after, elapsed = cpu_snapshot(pids=pids), time.monotonic() - started
            steal_pct = steal.pct()
        client_used = client.call("status", timeout=30)["cpu_seconds"] - client_before
        metrics_after = [metrics_scrape(url=metrics_url(url=url)) for url in metrics_urls or []]
        commands = redis.commands_processed() - commands_before if redis else None
    finally:
        client.call("close", timeout=120, group="fanout")
    used = cpu_delta(before=before, after=after)
    server_cpu = sum(seconds for name, seconds in used.items() if name != "redis")
    sockets = connect["connected"]
    per_post = []
    for index in range(posts):
        bucket = wait["buckets"].get(str(index), {})
        delivered = bucket.get("delivered", 0)
        per_post.append(
            {
                "index": index,
                "delivered": delivered,
                "p50": bucket.get("p50"),
                "p99": bucket.get("p99"),
                # Time to the last client: only meaningful when every socket got the post.
                "last": bucket.get("max") if delivered == sockets else None,
            }
        )
    delivery_check(
        bench=bench, scenario=scenario, what=f"{label} posts", answer=wait, notes={"duplicates": wait["duplicates"]}
    )
    site_metrics = None
    if metrics_urls:
        deltas = [
            metrics_delta(before=then, after=now) for then, now in zip(metrics_before, metrics_after, strict=True)
        ]
        delta = metrics_sum(*deltas)
        site_metrics = posts_metrics_check(
            bench=bench, scenario=scenario, label=label, wait=wait, summary=metrics_summary(delta=delta)
        )
    return {
        "label": label,
        "sockets": sockets,
        "site_metrics": site_metrics,
        "connect": {
            key: connect[key] for key in ("requested", "connected", "failed", "failures", "elapsed_s", "per_second")
        },
        "expected": wait["expected"],
        "delivered": wait["delivered"],
        "delivery_pct": wait["delivery_pct"],
        "duplicates": wait["duplicates"],
        "latency_ms": wait["latency_ms"],
        "per_post": per_post,
        "time_to_last_ms_max": max((post["last"] for post in per_post if post["last"] is not None), default=None),
        "backlog": backlog_verdict(
            per_post_p50=[post["p50"] for post in per_post],
            per_post_complete=[post["delivered"] == sockets for post in per_post],
        ),
        "elapsed_s": round(elapsed, 3),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_by_process": used,
        # The hypervisor's share of the servers' CPU over the window: the CPU figures are only as good as this is small.
        "server_cpu_steal_pct": steal_pct,
        "server_cpu_per_frame_us": per_frame_us(cpu_seconds=server_cpu, frames=wait["delivered"]),
        "redis_cpu_s": used.get("redis"),
        "redis_cpu_per_frame_us": per_frame_us(cpu_seconds=used["redis"], frames=wait["delivered"]) if redis else None,
        "redis_commands": commands,
        # The client's CPU over the same window as the servers': near 100 % means the client set the pace.
        "client_cpu_pct": round(100 * client_used / elapsed, 1),
        "client_cpu_s": round(client_used, 3),
        "publisher": {key: value for key, value in published.items() if key != "client_cpu"},
        "profile": profile_record(profile=profile, bench=bench),
    }


def posts_metrics_check(*, bench: Bench, scenario: str, label: str, wait: dict, summary: dict) -> dict:
    """The site's count of the posts' frames against the client's, exactly: every frame the site
    sent over the posts is a post's frame (nothing else is sent to a page that only listens; the
    servers' pings are WebSocket control frames, not counted), delivered once or as a duplicate.
    Only when every frame was delivered: a frame still on its way at the deadline is sent but not
    received. The delay histogram observes the frames sent from a post's group message, not those
    a socket read from the database (its catch-up when it connected, still running as the first
    post committed; or after a gap), which the bench cannot tell apart: at most as many as were
    sent, the difference reported (``caught_up``)."""
    received = wait["delivered"] + wait["duplicates"]
    complete = wait["delivered"] == wait["expected"]
    sent, observed = summary["frames_sent"], summary["delay_count"]
    bench.check(
        scenario=scenario,
        name=f"{label} metrics: {sent} frames sent, {received} received, {observed} delays observed",
        ok=not complete or (sent == received and observed <= sent),
        detail="" if complete else "not every frame was delivered: not compared",
    )
    return {
        **{key: summary[key] for key in ("frames_sent", "delay_count", "delay_p99_ms", "error_frames")},
        "caught_up": sent - observed,
    }
