"""Scenario 5, flood: one client sends valid frames as fast as its socket takes them, while the
server's memory is sampled. On a sketchpad board (rate limited: refusals, then close 4429; the
flooder comes back with new sockets) another socket receives; on a liveblog socket every frame
is answered with read_only (or, where the site limits it, rate_limited and 4429 as on the board).
Nothing may be dropped without the sender being told."""

from bench.context import Bench
from bench.procs import BenchSite, LineProcess, Sampler, client_running, publisher_running, site_script, site_serving
from bench.scenarios import connect_check, ws_of
from bench.scenarios.liveblog import SLUG as LIVEBLOG_SLUG

SCENARIO = "flood"
BOARD = "bench-flood"
# The socket flooded on each site, and the first frame its receiver waits for.
SOCKETS = {
    "sketchpad": (f"/ws/sketchpad/{BOARD}/", "snapshot"),
    "liveblog": (f"/ws/liveblog/{LIVEBLOG_SLUG}/", "open"),
}
# RSS counts as bounded when the second half's mean exceeds the first half's by less than this.
BOUNDED_GROWTH = 0.10
BOUNDED_GROWTH_MB = 5.0


def flood_run(*, bench: Bench) -> dict:
    result: dict = {"layer": bench.layer_other, "seconds": bench.sizes.flood_seconds}
    with client_running(name="flood-client", workdir=bench.workdir, pinning=bench.pinning) as client:
        sketchpad = bench.site(name="sketchpad")
        site_script(site=sketchpad, module="sketchpad_setup", args=["--boards", BOARD], timeout=120)
        with site_serving(site=sketchpad, count=1, layer=bench.layer_other, pinning=bench.pinning) as urls:
            result["sketchpad"] = flood_measure(
                bench=bench, client=client, kind="sketchpad", site=sketchpad, origin=urls[0]
            )
        liveblog = bench.site(name="liveblog")
        with (
            site_serving(site=liveblog, count=1, layer=bench.layer_other, pinning=bench.pinning) as urls,
            publisher_running(site=liveblog, slug=LIVEBLOG_SLUG) as publisher,
        ):
            publisher.call("status", timeout=60)  # the liveblog exists
            result["liveblog"] = flood_measure(
                bench=bench, client=client, kind="liveblog", site=liveblog, origin=urls[0]
            )
    return result


def flood_measure(*, bench: Bench, client: LineProcess, kind: str, site: BenchSite, origin: str) -> dict:
    """Flood the ``kind`` socket of the one process serving the site, at ``origin``."""
    seconds = bench.sizes.flood_seconds
    path, ready = SOCKETS[kind]
    url, pid = f"{ws_of(url=origin)}{path}", site.pids[0]
    receiver = client.call(
        "connect", timeout=60, group="receiver", conns=[{"url": url, "origin": origin}], ready=ready, deadline=30
    )
    connect_check(bench=bench, scenario=SCENARIO, what=f"{kind}: receiver", result=receiver)
    with Sampler(pids={"server": pid}, interval=0.25) as sampler:
        answer = client.call(
            "flood",
            timeout=seconds + 120,
            url=url,
            origin=origin,
            kind=kind,
            receiver_group="receiver",
            seconds=seconds,
            reconnect=True,  # a flooder that is closed on comes back, as a script would
            # The server may answer long after the flood stops: bounded, but generous.
            drain=30.0 if not bench.smoke else 20.0,
        )
    client.call("close", timeout=60, group="receiver")
    rss = [sample[2]["server"] for sample in sampler.samples]
    half = len(rss) // 2
    first = sum(rss[:half]) / half if half else None
    last = sum(rss[half:]) / (len(rss) - half) if len(rss) - half else None
    growth = (last - first) if first and last else None
    bounded = growth is not None and (growth < BOUNDED_GROWTH * first or growth < BOUNDED_GROWTH_MB * 2**20)
    told = sum(answer["errors"].values())
    bench.check(
        scenario=SCENARIO,
        name=f"{kind}: nothing dropped without telling the sender "
        f"({answer['silently_dropped']} silent of {answer['sent']} sent)",
        # A flood that sent nothing proved nothing: that is a failure of the harness, not a pass.
        ok=answer["sent"] > 0 and answer["silently_dropped"] == 0,
        detail=f"errors {answer['errors']}, close codes {answer['close_codes']}",
    )
    return {
        "kind": kind,
        "flood_seconds": answer["seconds"],
        "connections": answer["connections"],
        "sent": answer["sent"],
        "sent_per_s": round(answer["sent"] / answer["seconds"], 1) if answer["seconds"] else None,
        # How long the server's answers kept coming after the flood stopped: its backlog.
        "answers_trailed_s": answer["answers_trailed_s"],
        "receiver_got": answer["receiver_got"],
        "told": told,
        "errors": answer["errors"],
        "close_codes": answer["close_codes"],
        "silently_dropped": answer["silently_dropped"],
        "still_pending_at_wait_limit": answer["still_pending_at_wait_limit"],
        "per_connection": answer["per_connection"],
        "rss_max_mb": round(max(rss) / 2**20, 1) if rss else None,
        "rss_first_half_mb": round(first / 2**20, 1) if first else None,
        "rss_second_half_mb": round(last / 2**20, 1) if last else None,
        "rss_bounded": bounded,
        "samples": len(rss),
        "client_cpu_pct": answer["client_cpu"]["pct"],
        "server_errors": site.tracebacks()[:3000],
    }
