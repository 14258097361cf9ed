"""6. A page stops reading for 60 s while 1,000 posts (9 KB each, a post holds at
most 10,000 characters) go to its liveblog.

daphne (Twisted) would buffer everything the page does not read, 9 MB here,
without limit. realtime_common.sockets closes such a socket with 1013 (Try Again
Later) once more than WEBSOCKET_SEND_BUFFER_LIMIT (1 MiB) waits in its
transport, and sends it nothing more: the server's memory stays bounded, the
other pages are not delayed, and the slow page, once it reads again, finds its
socket closed, reconnects with ``since`` and catches up (by resync when it
missed more than the 500 events, at least, that the liveblog keeps).
"""

import asyncio
import os
import time
from datetime import datetime

from client import LiveblogPage, all_until, pages_open
from conftest import log_count, metrics_until, record, tracebacks, wait_for_log

from realtime_common.testing.metrics import metric_value

POSTS = 1000
BODY = 9 * 1024
PAUSE = float(os.environ.get("FAULTS_SLOW_PAUSE", "60"))
RATE = 100  # posts a second


async def test_a_page_that_stops_reading(sites):
    liveblog = sites("liveblog", servers=1)
    server = liveblog.daphnes[0]
    script = liveblog.script()
    fast = [LiveblogPage(name=f"fast{n}", slug="djangocon", urls=[server.url]) for n in range(5)]
    # Its kernel receive buffer as small as Linux allows, so the backlog piles up in the server.
    slow = LiveblogPage(name="slow", slug="djangocon", urls=[server.url], rcvbuf=4096)
    pages = [*fast, slow]
    async with pages_open(pages=pages):
        baseline = server.rss()
        peak = baseline
        sampling = True

        async def sample():
            nonlocal peak
            while sampling:
                peak = max(peak, server.rss())
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        try:
            slow.pause()
            paused_at, paused_wall = time.monotonic(), time.time()
            bodies = [f"slow-reader {n} ts={{ts}} " + "x" * BODY for n in range(POSTS)]
            published = await script.acall("posts", slug="djangocon", bodies=bodies, rate=RATE)
            await all_until(
                fast,
                lambda p: sum("slow-reader" in html for html in p.posts.values()) == POSTS,
                timeout=30,
                what="fast pages",
            )
            await wait_for_log(server, "closed a slow reader", timeout=10)
            line = next(line for line in server.text().splitlines() if "closed a slow reader" in line)
            closed_at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            closed_after = closed_at - paused_wall
            backlog = int(line.split(": ", 2)[2].split(" bytes")[0])
            backlog_peak, peak = peak, server.rss()  # what the backlog cost; then, what catching up costs

            # The other pages' delay: from the save (ts=, wall clock) to the frame's arrival.
            offset = time.time() - time.monotonic()
            delays = []
            for page in fast:
                for arrived, frame in page.frames:
                    if frame.get("type") == "post.created" and "slow-reader" in frame["post"]["html"]:
                        saved = float(frame["post"]["html"].split("ts=", 1)[1].split(" ", 1)[0])
                        delays.append(arrived + offset - saved)
            delays.sort()

            # The page reads again after its minute: it finds its socket closed, comes back, catches up.
            await asyncio.sleep(max(0.0, paused_at + PAUSE - time.monotonic()))
            slow.resume_reading()
            resumed = time.monotonic()
            await slow.until(
                lambda: slow.seq == published["seq"] and len(slow.opens) > 1, timeout=20, what="slow page caught up"
            )
            caught_up = time.monotonic() - resumed
            sampling = False
            await sampler

            assert sum("slow-reader" in html for html in slow.posts.values()) == POSTS
            assert log_count(server.text(), "closed a slow reader") == 1
            # What Prometheus sees of it: one slow reader closed; as many closes as the slow page saw (the
            # 1013, a resync's), once the server has counted them; every page's socket open again.
            shown = await metrics_until(
                [server],
                lambda shown: (
                    metric_value(shown, "realtime_closes_total") == len(slow.closes)
                    and metric_value(shown, "realtime_sockets_open") == len(pages)
                ),
                timeout=5,
                what=f"{len(slow.closes)} closes and {len(pages)} sockets open",
            )
            assert metric_value(shown, "realtime_slow_readers_closed_total") == 1, shown
            slow_close = slow.closes[0][1]
            assert slow_close in (1013, 1006), slow.closes
            # Unbounded, the backlog would be 9 MB (WEBSOCKET_SEND_BUFFER_LIMIT set out of reach, the
            # server grows by about that much here).
            assert backlog_peak - baseline < 4 * 2**20, (backlog_peak, baseline)
            p50, p99 = delays[len(delays) // 2], delays[int(len(delays) * 0.99)]
            assert p99 < 1.0, (p50, p99, delays[-1])
            assert server.alive() and tracebacks(server.text()) == [], server.text()
            for page in fast:
                assert page.closes == [] and page.duplicates == 0
            record(
                f"6. slow reader: a page paused {PAUSE:.0f} s while {POSTS} posts of {BODY // 1024} KB went out "
                f"({POSTS * BODY / 2**20:.0f} MB) at {RATE}/s to it and 5 other pages",
                f"closed by the server with 1013 {closed_after:.1f} s after it stopped reading ({backlog} bytes waiting); "
                f"the slow page saw {slow_close} when it read again, reconnected ({slow.resyncs} resync) and caught up",
                rss_baseline_mb=round(baseline / 2**20, 1),
                rss_peak_while_slow_mb=round(backlog_peak / 2**20, 1),
                rss_peak_catching_up_mb=round(peak / 2**20, 1),
                others_delay_p50_s=round(p50, 3),
                others_delay_p99_s=round(p99, 3),
                others_delay_max_s=round(delays[-1], 3),
                slow_caught_up_s=round(caught_up, 2),
                publish_s=round(published["elapsed"], 1),
            )
        finally:
            sampling = False
