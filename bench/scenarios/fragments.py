"""Scenario liveblog-fragments: what the fragments page costs per frame beside the JSON page
(liveblog/README.md, "The two liveblog pages"). The same sockets on the same two daphne processes, the same
posts from another process, to ``/ws/liveblog/<slug>/`` and to ``/ws/liveblog/<slug>/fragments/``,
alternated in one run, the order flipped each round; the server CPU per delivered frame of each,
and the ratio fragments/JSON round by round: its median, range and interquartile range."""

from contextlib import ExitStack
from functools import partial

from bench.context import Bench
from bench.procs import BenchSite, LineProcess, client_running, publisher_running, site_serving
from bench.scenarios import fanout_alternate, tracebacks_check
from bench.scenarios.liveblog import SITE_PROCESSES, SLUG, fanout_measure, liveblog_conns, posts_publish

SCENARIO = "liveblog-fragments"
PAGES = ("fragments", "json")


def fragments_run(*, bench: Bench) -> dict:
    site = bench.site(name="liveblog")
    with ExitStack() as stack:
        client = stack.enter_context(
            client_running(name="fragments-client", workdir=bench.workdir, pinning=bench.pinning)
        )
        urls = stack.enter_context(
            site_serving(site=site, count=SITE_PROCESSES, layer=bench.layer_other, pinning=bench.pinning)
        )
        result = fanout_alternate(
            bench=bench,
            sizes=bench.sizes.fragments,
            states=PAGES,
            measure=partial(page_measure, bench=bench, client=client, site=site, urls=urls),
        )
        for number, pid in enumerate(site.pids):
            bench.pinning.pid_check(name=f"liveblog-fragments daphne-{number}", pid=pid, cpu=1)
        errors = tracebacks_check(bench=bench, scenario=SCENARIO, site=site)
    return {**result, "server_errors": errors}


def page_measure(
    *,
    bench: Bench,
    client: LineProcess,
    site: BenchSite,
    urls: list[str],
    state: str,
    round_number: int,
) -> dict:
    """One fan-out to the page ``state`` ("fragments" or "json"), of the run's sizes (``bench.sizes``).
    Each round has a liveblog of its own: the fragments page's list sent on connect then holds at most
    the round's posts, not every post of the run (its cost is the connect's, outside the measured window,
    but it slows the connect)."""
    sockets, _rounds, posts, rate = bench.sizes.fragments
    fragments = state == "fragments"
    slug = f"{SLUG}-{round_number}"
    with publisher_running(site=site, slug=slug) as publisher:
        # Its answer also says the liveblog exists: the publisher creates it as it starts.
        last_seq = publisher.call("status", timeout=60)["last_seq"]
        return fanout_measure(
            bench=bench,
            client=client,
            label=f"{bench.layer_other} {state} N={sockets} #{round_number}",
            conns=liveblog_conns(
                urls=urls,
                sockets=sockets,
                since=None if fragments else last_seq,
                slug=slug,
                fragments=fragments,
            ),
            posts=posts,
            rate=rate,
            publish=partial(posts_publish, process=publisher, op="posts"),
            server_pids={f"daphne-{number}": pid for number, pid in enumerate(site.pids)},
            redis=bench.redis,
            metrics_urls=urls,
            scenario=SCENARIO,
            # The list is read after the handshake: a post saved before every page has it would
            # be in the list, and its event replayed as an update, not a new post.
            ready="snapshot" if fragments else "open",
        )
