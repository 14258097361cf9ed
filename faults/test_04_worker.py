"""4. The thumbnail worker killed mid-render, then down while boards change, its
requests lost meanwhile; and a request that never comes.

Every board's thumbnail still ends up rendered for its latest version, with no
new stroke: the worker ticks (at start, after an outage, every
WORKER_TICK_SECONDS) and renders every board whose thumbnail_of is behind its
strokes_version. WORKER_TICK_SECONDS is 2 here (30 by default), and the
worker's minute away is shortened to a few seconds: the requests it would have
lost to their 60 s expiry are deleted from Redis instead.
"""

import asyncio
import time

import redis as redis_py
from client import BoardPage, GalleryPage, pages_open
from conftest import SIGCONT, SIGKILL, SIGSTOP, metrics_until, record, seconds_round, tracebacks

from realtime_common.testing.metrics import metric_value

TICK = 2.0
BOARDS = ["heavy", "b1", "b2", "b3"]


async def boards_current(script, *, timeout: float, slugs=BOARDS) -> float:
    """Poll until every board's thumbnail shows its latest version; the seconds it took."""
    started = time.monotonic()
    while True:
        state = await script.acall("boards_state", slugs=slugs)
        if all(board["thumbnail_of"] == board["strokes_version"] for board in state.values()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"thumbnails behind after {timeout} s: {state}")
        await asyncio.sleep(0.1)


async def test_worker_killed_mid_render_and_down_for_a_while(sites, redis):
    sketchpad = sites("sketchpad", servers=1, env={"WORKER_TICK_SECONDS": str(TICK)}, worker=True)
    script = sketchpad.script()
    url = sketchpad.daphnes[0].url
    store = redis_py.Redis.from_url(redis.url)
    ids = await script.acall("boards", slugs=["heavy"], strokes=1800, points=20)
    ids |= await script.acall("boards", slugs=BOARDS[1:], strokes=3)
    render_seconds = await script.acall("render_seconds", slug="heavy")
    await boards_current(script, timeout=10 + 4 * render_seconds)
    gallery = GalleryPage(name="gallery", urls=[url])
    heavy = BoardPage(name="heavy", slug="heavy", urls=[url])
    others = [BoardPage(name=slug, slug=slug, urls=[url]) for slug in BOARDS[1:]]
    pages = [gallery, heavy, *others]

    def pending(board: str) -> bool:
        return bool(store.exists(f"sketchpad:1:thumbnail-pending-{ids[board]}"))

    async with pages_open(pages=pages):
        # Killed mid-render: a stroke asks for a rendering; the worker (held still until the
        # request is there) takes it, clearing the board's pending flag first, and dies while drawing.
        worker = sketchpad.workers[0]
        worker.signal(SIGSTOP)
        await heavy.draw("late", [[0.2, 0.8], [0.8, 0.2]], done=True)
        started = time.monotonic()
        while not pending("heavy"):  # the request goes out once the stroke is committed
            assert time.monotonic() - started < 10, "no rendering was requested"
            await asyncio.sleep(0.01)
        worker.signal(SIGCONT)
        while pending("heavy"):  # the worker takes it
            assert time.monotonic() - started < 10, "the worker never took the request"
            await asyncio.sleep(0.002)
        worker.signal(SIGKILL)
        worker.process.wait(timeout=10)
        state = (await script.acall("boards_state", slugs=["heavy"]))["heavy"]
        mid_render = state["thumbnail_of"] < state["strokes_version"]
        assert mid_render, f"the rendering ({render_seconds:.2f} s) finished before the kill: {state}"

        # Down "for a minute": boards change, their requests wait in Redis, then expire (deleted here).
        for page, stroke in zip(others, ("x1", "x2", "x3"), strict=True):
            await page.draw(stroke, [[0.1, 0.1], [0.9, 0.9]], done=True)
        await asyncio.sleep(0.3)  # the requests go out once the strokes' transactions commit
        queued = store.zcard("sketchpad:thumbnails")
        store.delete("sketchpad:thumbnails", "sketchpad:thumbnails$inflight")
        behind = await script.acall("boards_state", slugs=BOARDS)
        assert all(board["thumbnail_of"] < board["strokes_version"] for board in behind.values()), behind
        versions_before = dict(gallery.thumbnails)

        # A new worker: its first tick renders every board that is behind.
        back_at = time.monotonic()
        new_worker = sketchpad.worker()
        caught_up = await boards_current(script, timeout=TICK + 10 + 2 * render_seconds)
        # Prometheus sees it: every board behind rendered (its metrics server is up once Django is).
        shown = await metrics_until(
            [new_worker],
            lambda shown: metric_value(shown, "sketchpad_thumbnails_rendered_total") >= len(BOARDS),
            timeout=5,
            what=f"{len(BOARDS)} thumbnails rendered",
        )
        rendered = metric_value(shown, "sketchpad_thumbnails_rendered_total")
        assert metric_value(shown, "sketchpad_thumbnail_render_seconds_count") == rendered, shown
        await gallery.until(
            lambda: all(gallery.thumbnails.get(slug) != versions_before.get(slug) for slug in BOARDS),
            timeout=5,
            what="gallery shows the new thumbnails",
        )
        gallery_at = time.monotonic() - back_at

        # A request that never comes (a flag left behind by a lost request): the periodic tick renders it.
        store.set(f"sketchpad:1:thumbnail-pending-{ids['b1']}", b"1", ex=60)
        version = (await script.acall("boards_state", slugs=["b1"]))["b1"]["strokes_version"]
        await others[0].draw("y1", [[0.5, 0.1], [0.5, 0.9]], done=True)
        while (await script.acall("boards_state", slugs=["b1"]))["b1"]["strokes_version"] == version:
            await asyncio.sleep(0.01)
        lost_at = time.monotonic()
        await boards_current(script, timeout=TICK + 5, slugs=["b1"])
        ticked = time.monotonic() - lost_at
        # The tick's rendering is counted too: one more.
        await metrics_until(
            [new_worker],
            lambda shown: metric_value(shown, "sketchpad_thumbnails_rendered_total") == rendered + 1,
            timeout=2,
            what="the ticked rendering counted",
        )

        assert new_worker.alive()
        assert tracebacks(new_worker.text()) == [], new_worker.text()
        assert tracebacks(sketchpad.daphnes[0].text()) == [], sketchpad.daphnes[0].text()
        record(
            "4. worker SIGKILLed mid-render, then down with 3 boards changed and their requests expired",
            f"killed {render_seconds:.2f} s render mid-way; {queued} queued requests dropped; "
            "every board rendered at its latest version by the new worker's first tick, no new stroke",
            **seconds_round(
                all_current_after_restart_s=caught_up,
                gallery_updated_s=gallery_at,
                lost_request_rendered_by_tick_s=ticked,
                tick_s=TICK,
            ),
        )
