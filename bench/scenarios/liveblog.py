"""Scenario 1, liveblog fan-out: N sockets over two daphne processes, posts saved by another
process at a steady rate, on each channel layer; the same sockets and publish pattern against
the bare websockets server and the raw ASGI app; and redis-benchmark's PUBLISH rate."""

import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial

from bench.context import Bench, profile_record, profiler_running
from bench.procs import (
    LineProcess,
    Redis,
    bare_running,
    client_running,
    cpu_delta,
    cpu_snapshot,
    publisher_running,
    raw_asgi_running,
    redis_benchmark,
    site_serving,
)
from bench.scenarios import connect_check, delivery_check, per_frame_us, tracebacks_check, ws_of
from bench.stats import backlog_verdict

SCENARIO = "liveblog"
SLUG = "bench"
# Two daphne processes, the sockets split evenly, as the issue asks.
SITE_PROCESSES = 2


def liveblog_run(*, bench: Bench) -> dict:
    sizes = bench.sizes
    result = {
        "sockets": list(sizes.liveblog_sockets),
        "posts": sizes.liveblog_posts,
        "rate": sizes.liveblog_rate,
        "layers": {},
        "baselines": {},
    }
    with client_running(name="liveblog-client", workdir=bench.workdir, pinning=bench.pinning) as client:
        for layer in bench.layers:
            result["layers"][layer] = layer_run(bench=bench, client=client, layer=layer)
        for name, running in (("bare", bare_running), ("raw_asgi", raw_asgi_running)):
            with running(workdir=bench.workdir, pinning=bench.pinning) as server:
                rows = []
                for sockets in sizes.liveblog_sockets:
                    conns = [{"url": f"{ws_of(url=server.url)}/ws/all/"} for _ in range(sockets)]
                    # Through the server's publisher socket, to the room every socket is in.
                    route = {"url": f"{ws_of(url=server.url)}/pub/", "room": "all"}
                    publish = partial(posts_publish, bench=bench, process=client, op="publish", **route)
                    rows.append(
                        fanout_measure(
                            bench=bench,
                            client=client,
                            label=f"{name} N={sockets}",
                            conns=conns,
                            publish=publish,
                            server_pids={name: server.pid},
                            redis=None,
                        )
                    )
                result["baselines"][name] = {"processes": 1, "rows": rows}
        result["redis_benchmark"] = redis_benchmark(port=bench.redis.port, requests=sizes.redis_benchmark_requests)
        result["client_cpu_log"] = client.cpu_log[-50:]
        result["pinned_at_end"] = bench.pinning.pid_check(name="liveblog-client", pid=client.pid, cpu=0)
    return result


def layer_run(*, bench: Bench, client: LineProcess, layer: str) -> dict:
    sizes = bench.sizes
    site = bench.site(name="liveblog")
    with ExitStack() as stack:
        urls = stack.enter_context(site_serving(site=site, count=SITE_PROCESSES, layer=layer, pinning=bench.pinning))
        publisher = stack.enter_context(publisher_running(site=site, slug=SLUG))
        status = publisher.call("status", timeout=60)
        rows = []
        profile_at = 1000 if 1000 in sizes.liveblog_sockets else sizes.liveblog_sockets[0]
        for sockets in sizes.liveblog_sockets:
            conns = liveblog_conns(urls=urls, sockets=sockets, since=publisher.call("status", timeout=60)["last_seq"])
            publish = partial(posts_publish, bench=bench, process=publisher, op="posts")
            rows.append(
                fanout_measure(
                    bench=bench,
                    client=client,
                    label=f"{layer} N={sockets}",
                    conns=conns,
                    publish=publish,
                    server_pids={f"daphne-{number}": pid for number, pid in enumerate(site.pids)},
                    redis=bench.redis,
                    profile_name=f"liveblog-{sockets}-{layer}" if sockets == profile_at else None,
                )
            )
        for number, pid in enumerate(site.pids):
            bench.pinning.pid_check(name=f"liveblog daphne-{number}", pid=pid, cpu=1)
        errors = tracebacks_check(bench=bench, scenario=SCENARIO, site=site, name=f"{layer}: no server tracebacks")
    return {
        "layer": layer,
        "backend": status["backend"],
        "processes": SITE_PROCESSES,
        "rows": rows,
        "server_errors": errors,
    }


def posts_publish(*, bench: Bench, process: LineProcess, op: str, **route: str) -> dict:
    """The run's posts at its rate: ``op`` "posts" of the site's publisher, or "publish" of the
    load client through a baseline server (``route``: the url and room of its publisher socket)."""
    sizes = bench.sizes
    # Time for every post at the rate, and a minute more.
    timeout = 60 + sizes.liveblog_posts / sizes.liveblog_rate
    return process.call(op, timeout=timeout, count=sizes.liveblog_posts, rate=sizes.liveblog_rate, **route)


def liveblog_conns(*, urls: list[str], sockets: int, since: int | None) -> list[dict]:
    """Sockets split evenly over the processes, as a load balancer would, each resuming from
    ``since`` as the page does (it connects with the seq it rendered). Without ``since`` some
    versions of the site went live only once the consumer had read the seq, after the handshake,
    so a post committed just after the handshake could count as seen already."""
    query = f"?since={since}" if since is not None else ""
    return [
        {"url": f"{ws_of(url=urls[number % len(urls)])}/ws/liveblog/{SLUG}/{query}", "origin": urls[number % len(urls)]}
        for number in range(sockets)
    ]


def fanout_measure(
    *,
    bench: Bench,
    client: LineProcess,
    label: str,
    conns: list[dict],
    publish: Callable[[], dict],
    server_pids: dict[str, int],
    redis: Redis | None,
    profile_name: str | None = None,
) -> dict:
    """Connect the sockets, publish the posts, wait (bounded) for every frame; the server CPU
    between just before the first post and the last frame (or the deadline)."""
    sizes = bench.sizes
    connect = client.call(
        "connect", timeout=300, group="fanout", conns=conns, concurrency=100, deadline=240, ready="open"
    )
    connect_check(bench=bench, scenario=SCENARIO, what=f"{label} connect", result=connect)
    try:
        client.call("expect_posts", timeout=30, groups=["fanout"], posts=sizes.liveblog_posts)
        pids = {**server_pids, **({"redis": redis.pid} if redis else {})}
        commands_before = redis.commands_processed() if redis else None
        client_before = client.call("status", timeout=30)["cpu_seconds"]
        before, started = cpu_snapshot(pids=pids), time.monotonic()
        profile_pid = next(iter(server_pids.values()))
        seconds = sizes.profile_seconds if profile_name else 0
        with profiler_running(bench=bench, pid=profile_pid, name=profile_name, seconds=seconds) as profile:
            published = publish()
            wait = client.call("expect_wait", timeout=sizes.liveblog_drain + 60, wait=sizes.liveblog_drain)
            after, elapsed = cpu_snapshot(pids=pids), time.monotonic() - started
        client_used = client.call("status", timeout=30)["cpu_seconds"] - client_before
        commands = redis.commands_processed() - commands_before if redis else None
    finally:
        client.call("close", timeout=120, group="fanout")
    used = cpu_delta(before=before, after=after)
    server_cpu = sum(seconds for name, seconds in used.items() if name != "redis")
    sockets = connect["connected"]
    per_post = []
    for index in range(sizes.liveblog_posts):
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
        bench=bench, scenario=SCENARIO, what=f"{label} posts", answer=wait, notes={"duplicates": wait["duplicates"]}
    )
    return {
        "label": label,
        "sockets": sockets,
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
