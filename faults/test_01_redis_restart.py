"""1. Redis restarts (no persistence: stopped, a new one started on the same port)
while pages of all three demos are open, and events are saved meanwhile.

Every process lives through it; the sockets stay open (or close and come back
with ``since``); within 5 s of Redis coming back every page gets live broadcasts
again, and everything saved meanwhile: the liveblog's posts through seq
catch-up, the chat's messages through their room's seq, the sketchpad's strokes
through a new snapshot. Each process logs the outage once, not once per retry.
"""

import asyncio
import time

from client import BoardPage, ChatPage, GalleryPage, LiveblogPage, all_until, pages_open
from conftest import (
    demo_flows,
    demo_pages_make,
    events_reached,
    events_write,
    log_count,
    metrics_until,
    record,
    seconds_round,
    tracebacks,
    urls_spread,
    wait_for_log,
)

from realtime_common.testing.metrics import metric_value

OUTAGE = 3.0  # seconds Redis stays down
BACK_WITHIN = 5.0  # seconds, after Redis is back, for every page to be live and caught up


async def test_redis_restart_with_pages_of_every_demo_open(sites, redis):
    liveblog = sites("liveblog", servers=2)
    chat = sites("chat", servers=2)
    sketchpad = sites("sketchpad", servers=2, worker=True)
    blog_script, chat_script, pad_script = liveblog.script(), chat.script(), sketchpad.script()
    scripts = (blog_script, chat_script, pad_script)

    demo = await demo_pages_make(sites=(liveblog, chat, sketchpad), scripts=scripts, board="restart")
    blog_pages, chat_pages, board_pages = demo
    galleries = [GalleryPage(name=f"gallery{n}", urls=urls_spread(site=sketchpad, number=n)) for n in range(2)]
    pages = [*blog_pages, *chat_pages, *board_pages, *galleries]
    daphnes = [server for site in (liveblog, chat, sketchpad) for server in site.daphnes]
    async with pages_open(pages=pages):
        drawer = board_pages[0]
        before = await demo_flows(pages=demo, scripts=scripts, text="before the restart", daphnes=daphnes)

        # Redis goes away; writes go on meanwhile: a post, a message (the admin's), a finished stroke.
        redis.stop()
        down_at = time.monotonic()
        during = await events_write(
            pages=demo, scripts=scripts, text="saved while Redis was down", username="ben", stroke="during"
        )
        while "during" not in await pad_script.acall("strokes", slug="restart"):  # stored by the server
            assert time.monotonic() - down_at < OUTAGE, "the stroke was not stored while Redis was down"
            await asyncio.sleep(0.02)
        # Pages that open meanwhile: the liveblog and the board need only the database to
        # connect; their group subscriptions are made once Redis is back.
        late = [
            LiveblogPage(name="blog-late", slug="djangocon", urls=urls_spread(site=liveblog, number=1)),
            BoardPage(name="board-late", slug="restart", urls=urls_spread(site=sketchpad, number=1)),
        ]
        pages += late
        await asyncio.gather(*(page.start() for page in late))
        assert late[0].has("saved while Redis was down") and "during" in late[1].strokes
        # Prometheus sees every process's layer down (ChannelLayerDown fires on it).
        await metrics_until(
            daphnes,
            lambda shown: metric_value(shown, "realtime_channel_layer_up") == 0,
            timeout=max(0.1, down_at + OUTAGE - time.monotonic()),
            what="the channel layer down during the outage",
        )
        await asyncio.sleep(max(0.0, down_at + OUTAGE - time.monotonic()))  # the outage itself
        assert [site for site in (liveblog, chat, sketchpad) for server in site.daphnes if not server.alive()] == []

        redis.start()
        up_at = time.monotonic()

        # Everything saved meanwhile reaches every page, without any further event.
        caught_up = await events_reached(
            pages=demo, text="saved while Redis was down", stroke="during", timeout=BACK_WITHIN
        )

        # Live again: probes sent every 0.2 s from now on; the first to reach every page.
        live = await live_again(
            blog_script, chat_script, [*blog_pages, late[0]], chat_pages, [*board_pages, late[1]], started=up_at
        )

        # A job for the worker: its receive works again (it says so when the first job comes).
        await drawer.draw("after", [[0.6, 0.6], [0.7, 0.7]], done=True)
        worker = sketchpad.workers[0]
        await wait_for_log(worker, "worker: receiving on", timeout=10)

        closes = sum(len(page.closes) for page in pages)
        for site in (liveblog, chat, sketchpad):
            for server in site.daphnes:
                assert server.alive(), f"{site.directory.name} daphne died"
                text = server.text()
                assert log_count(text, "channel layer: lost Redis") == 1, text
                assert log_count(text, "channel layer: Redis at") == 1, text
                # The sketchpad's stroke stored during the outage could not ask for its
                # thumbnail: Django logs that failed on_commit, once, with its traceback.
                assert [line for line in tracebacks(text) if "on_commit()" not in line] == [], text
        # And up again, each process's layer reconnected once (as it logged).
        after = [server.metrics() for server in daphnes]
        for server, then, now in zip(daphnes, before, after, strict=True):
            assert metric_value(now, "realtime_channel_layer_up") == 1, (server.url, now)
            reconnects = metric_value(now, "realtime_channel_layer_reconnects_total")
            assert reconnects - metric_value(then, "realtime_channel_layer_reconnects_total") == 1, (server.url, now)
        assert worker.alive()
        worker_log = worker.text()
        assert log_count(worker_log, "worker: cannot receive on") == 1, worker_log
        assert log_count(worker_log, "worker: receiving on") == 1, worker_log
        # The post saved during the outage: stored, its broadcast logged once by its writer.
        assert during["seq"] > 0
        assert log_count(blog_script.log(), "in on_commit()") == 1, blog_script.log()
        for page in blog_pages:
            assert page.duplicates == 0 and page.seqs == sorted(page.seqs)

        record(
            "1. Redis restart (3 s outage), 4 liveblog + 4 chat + 4 board + 2 gallery pages on 2 daphne each "
            "(+1 liveblog, +1 board page opened during the outage), worker",
            f"every process up; {closes} socket closes; one warning + one recovery line per process",
            **seconds_round(caught_up_s=caught_up, live_again_s=live, outage_s=up_at - down_at),
        )


async def live_again(blog_script, chat_script, blog_pages, chat_pages, board_pages, *, started: float) -> float:
    """Send a probe of each kind every 0.2 s until every page got one sent after ``started``;
    the seconds from ``started`` to the moment the last page got its first."""
    drawer, watchers = board_pages[0], board_pages[1:]
    number = 0
    probes = []

    def got_one(page) -> bool:
        if isinstance(page, LiveblogPage):
            return any(page.has(f"probe {n}") for n in range(number + 1))
        if isinstance(page, ChatPage):
            return any(page.has("lobby", f"probe {n}") for n in range(number + 1))
        return page.drawing.get("probe", 0) > 0

    everyone = [*blog_pages, *chat_pages, *watchers]
    deadline = started + BACK_WITHIN
    while not all(got_one(page) for page in everyone):
        assert time.monotonic() < deadline, f"not live again within {BACK_WITHIN} s of Redis coming back"
        probes.append(
            asyncio.gather(
                blog_script.acall("post", slug="djangocon", body=f"probe {number}"),
                chat_script.acall("message", room="lobby", username="cat", text=f"probe {number}"),
                drawer.draw("probe", [[0.5, 0.5]], done=False),
            )
        )
        number += 1
        try:
            await all_until(everyone, got_one, timeout=0.2, what="probe")
        except TimeoutError:
            pass
    await asyncio.gather(*probes, return_exceptions=True)
    return time.monotonic() - started
