"""The compose stack's monitoring, checked for real: `make compose-test` runs this after the e2e suite.

1. nginx never passes GET /metrics on: every port and host name it serves answers 404 itself.
2. Prometheus scrapes every process (each site, both chat replicas, the thumbnail worker), and the
   counters the e2e suite moved have moved.
3. Redis stopped makes the ChannelLayerDown alert fire (after its `for: 30s`), and it resolves once
   Redis is back.

It prints what it sees as it waits, and fails at the first thing that is not so. Against a stack of
your own: E2E_COMPOSE="docker compose -p <project>" .venv/bin/python e2e/compose_monitoring.py
(it stops that stack's Redis for a minute or two).

On the high-availability variant (docker-compose.ha.yml) `make compose-test` runs it twice instead:
`failover` kills the primary's container for good (never restarted), waits for the three sentinels to
promote the replica, and for every site process's channel layer to be up after that, printing the
seconds each took; `after-failover`, after the e2e suite ran on the new primary, checks 1. and 2.
"""

import argparse
import json
import os
import shlex
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from realtime_common.testing.servers import run, wait_until

PROMETHEUS_URL = "http://127.0.0.1:9090"
NGINX_URL = "http://127.0.0.1"
# What nginx serves (nginx/default.conf): a site on each of 8001-8003, and all of them by host name on 8000.
NGINX_PORTS_AND_HOSTS = [(8001, None), (8002, None), (8003, None)] + [
    (8000, host) for host in ("liveblog.localhost", "chat.localhost", "sketchpad.localhost", "ws.localhost", None)
]
SITES = ("liveblog", "chat", "sketchpad")
# The targets monitoring/prometheus.yml finds, as (job, compose service): one per container.
TARGETS = sorted(
    [("liveblog", "liveblog"), ("chat", "chat"), ("chat", "chat-2"), ("sketchpad", "sketchpad")]
    + [("sketchpad-worker", "sketchpad-worker")]
)
# A scrape every 5 s and a rule evaluation every 5 s: a minute is plenty for what is already there.
SCRAPE_TIMEOUT = 60.0
# ChannelLayerDown's `for: 30s`, plus the process noticing, a scrape and two evaluations.
ALERT_TIMEOUT = 120.0
# The high-availability variant (docker-compose.ha.yml): its sentinels, and the primary's name there.
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
SENTINEL_MASTER = "realtime"
PRIMARY = "redis"
# down-after-milliseconds (5 s) and the sentinels' vote take about 7 s here.
PROMOTION_TIMEOUT = 30.0
# The bound, every process on the new primary within 15 s of the kill, plus a scrape (5 s) to see it.
FOLLOW_TIMEOUT = 20.0


def prometheus_get(*, path: str, params: dict[str, str] | None = None) -> dict:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{PROMETHEUS_URL}{path}{query}", timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def prometheus_query(*, promql: str) -> list[dict]:
    """The instant vector ``promql`` evaluates to now: [{"metric": {labels}, "value": [time, "value"]}, ...]."""
    return prometheus_get(path="/api/v1/query", params={"query": promql})["result"]


def condition_wait(*, what: str, timeout: float, observe: Callable[[], tuple[bool, str]]) -> None:
    """Poll ``observe()``, which says whether the condition holds and what it saw, until it holds;
    print what it saw each time that changes, so a failure shows how far it got."""
    seen_last = None

    def holds() -> bool:
        nonlocal seen_last
        done, seen = observe()
        if seen != seen_last:
            print(f"    {what}: {seen}", flush=True)
            seen_last = seen
        return done

    wait_until(holds, timeout=timeout, what=what)


def nginx_metrics_check() -> None:
    """404 from nginx itself: a response from a site would carry X-Upstream (the replica that answered).
    Through nginx a site sees a client on compose's network (the address nginx forwards is the
    host's, behind Docker's port publishing), which its DJANGO_METRICS_ALLOWED_NETWORKS lets in:
    only nginx's own rule keeps /metrics from every visitor."""
    for port, host in NGINX_PORTS_AND_HOSTS:
        request = urllib.request.Request(f"{NGINX_URL}:{port}/metrics", headers={"Host": host} if host else {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, upstream = response.status, response.headers.get("X-Upstream")
        except urllib.error.HTTPError as error:
            status, upstream = error.code, error.headers.get("X-Upstream")
        print(f"    GET :{port}/metrics (Host: {host or 'default'}): {status}, X-Upstream: {upstream}")
        assert (status, upstream) == (404, None), f"nginx passed /metrics on, or answered {status}"


def targets_up_observe() -> tuple[bool, str]:
    targets = sorted(
        (sample["metric"]["job"], sample["metric"]["service"], sample["value"][1])
        for sample in prometheus_query(promql="up")
    )
    done = [(job, service) for job, service, _ in targets] == TARGETS and all(up == "1" for *_, up in targets)
    return done, ", ".join(f"{service} up={up}" for _, service, up in targets) or "no target yet"


# The sites' daphne processes, the worker aside (its site label is "sketchpad" too).
SITE_JOBS = "|".join(SITES)
SITE_PROCESSES = len([job for job, _ in TARGETS if job in SITES])
COUNTERS = {
    "accepted handshakes": f'sum by (site) (realtime_handshakes_total{{job=~"{SITE_JOBS}",outcome="accepted"}})',
    "frames sent": f'sum by (site) (realtime_frames_sent_total{{job=~"{SITE_JOBS}"}})',
}


def counters_observe() -> tuple[bool, str]:
    """Every site accepted sockets and sent frames during the e2e suite, the worker rendered
    thumbnails (the gallery test draws), and every site process's channel layer is up."""
    seen = {
        name: {sample["metric"]["site"]: float(sample["value"][1]) for sample in prometheus_query(promql=promql)}
        for name, promql in COUNTERS.items()
    }
    rendered = prometheus_query(promql='sum(sketchpad_thumbnails_rendered_total{job="sketchpad-worker"})')
    layer_up = prometheus_query(promql=f'count(realtime_channel_layer_up{{job=~"{SITE_JOBS}"}} == 1)')
    done = (
        all(by_site.get(site, 0) > 0 for by_site in seen.values() for site in SITES)
        and bool(rendered)
        and float(rendered[0]["value"][1]) > 0
        and bool(layer_up)
        and int(layer_up[0]["value"][1]) == SITE_PROCESSES
    )
    figures = [f"{name} {by_site}" for name, by_site in seen.items()]
    figures.append(f"thumbnails rendered {rendered[0]['value'][1] if rendered else 0}")
    figures.append(f"processes with the channel layer up {layer_up[0]['value'][1] if layer_up else 0}")
    return done, "; ".join(figures)


def layer_down_alerts() -> dict[str, str]:
    """The ChannelLayerDown alerts now, "<service> <instance>" -> pending | firing (resolved ones are not listed),
    in a steady order: the API lists them in any."""
    return dict(
        sorted(
            (f"{alert['labels']['service']} {alert['labels']['instance']}", alert["state"])
            for alert in prometheus_get(path="/api/v1/alerts")["alerts"]
            if alert["labels"]["alertname"] == "ChannelLayerDown"
        )
    )


def layer_down_alert_check(*, compose: list[str]) -> None:
    # Every daphne process (the worker aside): each has a channel layer connection of its own.
    processes = {
        f"{sample['metric']['service']} {sample['metric']['instance']}"
        for sample in prometheus_query(promql=f'up{{job=~"{SITE_JOBS}"}}')
    }
    assert len(processes) == SITE_PROCESSES, processes
    assert layer_down_alerts() == {}, "ChannelLayerDown is active before Redis was stopped"

    def firing_everywhere() -> tuple[bool, str]:
        alerts = layer_down_alerts()
        return all(alerts.get(process) == "firing" for process in processes), str(alerts or "no alert yet")

    def resolved() -> tuple[bool, str]:
        alerts = layer_down_alerts()
        return not alerts, str(alerts or "none active")

    run([*compose, "stop", "redis"], timeout=60)
    stopped = time.monotonic()
    try:
        condition_wait(what="ChannelLayerDown, Redis stopped", timeout=ALERT_TIMEOUT, observe=firing_everywhere)
        print(f"    firing for every site process {time.monotonic() - stopped:.0f}s after Redis stopped")
    finally:
        run([*compose, "start", "redis"], timeout=60)
    started = time.monotonic()
    condition_wait(what="ChannelLayerDown, Redis back", timeout=ALERT_TIMEOUT, observe=resolved)
    print(f"    resolved {time.monotonic() - started:.0f}s after Redis started")


def container_id(*, compose: list[str], service: str) -> str:
    return run([*compose, "ps", "-q", service], timeout=60).stdout.strip()


def sentinel_primaries(*, sentinels: list[str]) -> list[str]:
    """The host name each sentinel gives for the primary now (docker exec: compose's exec is slower)."""
    return [
        run(
            ["docker", "exec", sentinel, "redis-cli", "-p", "26379", "sentinel", "get-master-addr-by-name"]
            + [SENTINEL_MASTER],
            timeout=10,
        ).stdout.split()[0]
        for sentinel in sentinels
    ]


def layer_up_since_observe(*, since: float) -> tuple[bool, str]:
    """Every site process's channel layer is up in a scrape taken after ``since`` (Unix time): the
    replica's promotion, before which there was no primary to be up on."""
    # timestamp() gives a sample's scrape time only when handed the selector itself, hence the `and`.
    layer_up = f'realtime_channel_layer_up{{job=~"{SITE_JOBS}"}}'
    scraped = {
        sample["metric"]["service"]: float(sample["value"][1]) - since
        for sample in prometheus_query(promql=f"timestamp({layer_up}) and {layer_up} == 1")
    }
    done = len(scraped) == SITE_PROCESSES and all(after > 0 for after in scraped.values())
    return done, ", ".join(f"{service} up {after:+.1f}s" for service, after in sorted(scraped.items())) or "none up"


def failover_check(*, compose: list[str]) -> None:
    """Kill the primary's container (SIGKILL, never restarted); the sentinels promote the replica, and
    every site process's channel layer is up again within the issue's 15 s (plus a scrape to see it)."""
    sentinels = [container_id(compose=compose, service=service) for service in SENTINELS]
    primary = container_id(compose=compose, service=PRIMARY)
    assert sentinel_primaries(sentinels=sentinels) == [PRIMARY] * len(SENTINELS), "the sentinels disagree"
    run(["docker", "kill", primary], timeout=60)
    killed = time.monotonic()

    def promoted() -> tuple[bool, str]:
        named = sentinel_primaries(sentinels=sentinels)
        return PRIMARY not in named and len(set(named)) == 1, f"the sentinels name {', '.join(named)}"

    condition_wait(what="the sentinels promote the replica", timeout=PROMOTION_TIMEOUT, observe=promoted)
    promoted_at = time.time()
    print(f"    failover: the replica promoted {time.monotonic() - killed:.1f}s after the primary was killed")
    condition_wait(
        what="every site process's channel layer up since the promotion",
        timeout=FOLLOW_TIMEOUT - (time.monotonic() - killed),
        observe=lambda: layer_up_since_observe(since=promoted_at),
    )
    print(f"    every site process's channel layer up {time.monotonic() - killed:.1f}s after the kill")
    state = run(["docker", "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", primary], timeout=10)
    assert state.stdout.split() == ["exited", "0"], f"the killed primary came back: {state.stdout}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", nargs="?", default="stack", choices=["stack", "failover", "after-failover"])
    check = parser.parse_args().check
    compose = shlex.split(os.environ["E2E_COMPOSE"])
    if check == "failover":
        print("==> the primary's container killed: the sentinels promote the replica, every process follows")
        failover_check(compose=compose)
        return
    print("==> nginx answers 404 for /metrics on every port and host name, without asking a site")
    nginx_metrics_check()
    print("==> Prometheus scrapes every process: up == 1 for each site, both chat replicas and the worker")
    condition_wait(what="targets", timeout=SCRAPE_TIMEOUT, observe=targets_up_observe)
    print("==> the e2e suite's traffic shows in the counters")
    condition_wait(what="counters", timeout=SCRAPE_TIMEOUT, observe=counters_observe)
    if check == "stack":
        print("==> Redis stopped: ChannelLayerDown fires for every site process; Redis back: it resolves")
        layer_down_alert_check(compose=compose)


if __name__ == "__main__":
    main()
