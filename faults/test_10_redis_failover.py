"""10. Redis fails over: the primary is killed (SIGKILL) and never comes back; the
sentinel promotes its replica, while pages of all three demos are open and events
are saved meanwhile.

The sites reach Redis only through the sentinel (REDIS_SENTINELS; no REDIS_URL).
Every process talks to the new primary within 15 s of the kill (its channel layer up
again, as its /metrics says; the worker receiving again), none exits, no socket is
closed by the server, everything saved during the failover reaches every page from
the stored events, and broadcasts are live again within seconds of the switch.
"""

import asyncio
import time

from client import pages_open
from conftest import (
    demo_flows,
    demo_pages_make,
    events_reached,
    events_write,
    log_count,
    metrics_until,
    record,
    seconds_round,
    wait_for_log,
)
from test_01_redis_restart import live_again

from realtime_common.testing.metrics import metric_value

SWITCHED_WITHIN = 15.0  # seconds from the kill to every process on the new primary


async def test_redis_failover_with_pages_of_every_demo_open(sites, redis_sentinel):
    liveblog = sites("liveblog", servers=2, sentinel=redis_sentinel)
    chat = sites("chat", servers=2, sentinel=redis_sentinel)
    sketchpad = sites("sketchpad", servers=2, worker=True, sentinel=redis_sentinel)
    blog_script, chat_script, pad_script = liveblog.script(), chat.script(), sketchpad.script()
    scripts = (blog_script, chat_script, pad_script)

    demo = await demo_pages_make(sites=(liveblog, chat, sketchpad), scripts=scripts, board="failover")
    blog_pages, chat_pages, board_pages = demo
    pages = [*blog_pages, *chat_pages, *board_pages]
    daphnes = [server for site in (liveblog, chat, sketchpad) for server in site.daphnes]
    async with pages_open(pages=pages):
        drawer = board_pages[0]
        before = await demo_flows(pages=demo, scripts=scripts, text="before the failover", daphnes=daphnes)
        old_primary, replica = redis_sentinel.primary.port, redis_sentinel.replica.port
        assert await asyncio.to_thread(redis_sentinel.master_port) == old_primary

        # The primary dies for good; writes go on meanwhile.
        killed_at = time.monotonic()
        redis_sentinel.primary.stop(kill=True)
        # Prometheus sees every process's layer down (ChannelLayerDown fires on it) until the switch.
        await metrics_until(
            daphnes,
            lambda shown: metric_value(shown, "realtime_channel_layer_up") == 0,
            timeout=redis_sentinel.down_after_ms / 1000,
            what="the channel layer down before the sentinel acts",
        )
        await events_write(
            pages=demo, scripts=scripts, text="saved during the failover", username="ben", stroke="during"
        )
        while "during" not in await pad_script.acall("strokes", slug="failover"):  # stored by the server
            assert time.monotonic() - killed_at < SWITCHED_WITHIN, "the stroke was not stored during the failover"
            await asyncio.sleep(0.02)

        while await asyncio.to_thread(redis_sentinel.master_port) != replica:
            assert time.monotonic() - killed_at < SWITCHED_WITHIN, "the sentinel did not promote the replica"
            await asyncio.sleep(0.05)
        promoted_s = time.monotonic() - killed_at

        # Everything saved meanwhile reaches every page, from the stored events.
        await events_reached(pages=demo, text="saved during the failover", stroke="during", timeout=SWITCHED_WITHIN)
        caught_up_s = time.monotonic() - killed_at

        # Every daphne on the new primary: its layer up again, reconnected once.
        reconnected_s = []
        for server, then in zip(daphnes, before, strict=True):
            reconnects = metric_value(then, "realtime_channel_layer_reconnects_total")
            await metrics_until(
                [server],
                lambda shown, reconnects=reconnects: (
                    metric_value(shown, "realtime_channel_layer_up") == 1
                    and metric_value(shown, "realtime_channel_layer_reconnects_total") == reconnects + 1
                ),
                timeout=max(0.1, killed_at + SWITCHED_WITHIN - time.monotonic()),
                what=f"{server.url}'s channel layer on the new primary",
            )
            reconnected_s.append(time.monotonic() - killed_at)
        switched_at = time.monotonic()

        # Live again: the first probe to reach every page, from the switch.
        live = await live_again(blog_script, chat_script, blog_pages, chat_pages, board_pages, started=switched_at)

        # A job for the worker: it receives on the new primary.
        await drawer.draw("after", [[0.6, 0.6], [0.7, 0.7]], done=True)
        worker = sketchpad.workers[0]
        await wait_for_log(
            worker, "worker: receiving on", timeout=max(0.1, killed_at + SWITCHED_WITHIN - time.monotonic())
        )
        worker_s = time.monotonic() - killed_at

        closes = [(page.name, page.closes) for page in pages if page.closes]
        assert closes == [], f"sockets closed during the failover: {closes}"
        for site in (liveblog, chat, sketchpad):
            for server in site.daphnes:
                assert server.alive(), f"{site.directory.name} daphne died"
                assert log_count(server.text(), "channel layer: lost Redis") == 1, server.text()
        assert worker.alive()
        assert log_count(worker.text(), "worker: cannot receive on") == 1, worker.text()

        delivered = (
            f"{len(blog_pages)} liveblog pages got the post, {len(chat_pages)} chat pages the message, "
            f"{len(board_pages) - 1} boards the stroke saved during the failover; 0 socket closes"
        )
        measures = seconds_round(
            promoted_s=promoted_s,
            all_daphnes_reconnected_s=max(reconnected_s),
            caught_up_s=caught_up_s,
            live_again_after_switch_s=live,
            worker_receiving_s=worker_s,
        )
        # Sentinel's down-after-milliseconds: how long the primary is silent before the
        # failover starts (1 s here; the compose variant waits 5 s).
        down_after = redis_sentinel.down_after_ms
        print(f"failover (down-after {down_after} ms): {measures}; {delivered}")
        record(
            f"10. Redis failover (primary SIGKILLed, replica promoted by 1 sentinel, down-after {down_after} ms), "
            "4 liveblog + 4 chat + 4 board pages on 2 daphne each, worker",
            delivered,
            **measures,
        )
