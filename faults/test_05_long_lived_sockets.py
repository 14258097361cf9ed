"""5. Sockets older than the channel layer's group_expiry still receive their groups' messages.

On the pub/sub layer a subscription does not expire. On the core layer (tested
here: REDIS_CHANNEL_LAYER=core) a group membership is dropped group_expiry
seconds after it was added (a day by default; REDIS_GROUP_EXPIRY=3 here), so
every process re-adds its own sockets' memberships three times per
group_expiry (realtime_common.layers.RedisCoreLayer). Only a dead process's
memberships expire; a socket that closes leaves its groups at once.
"""

import asyncio
import time

import redis as redis_py
from client import BoardPage, ChatPage, GalleryPage, LiveblogPage, all_until, pages_open
from conftest import record, seconds_round, tracebacks

from realtime_common.testing.metrics import metric_value

EXPIRY = 3
CORE = {"REDIS_CHANNEL_LAYER": "core", "REDIS_GROUP_EXPIRY": str(EXPIRY)}


def memberships(store) -> dict[str, dict[str, float]]:
    return {
        key.decode(): {member.decode(): score for member, score in store.zrange(key, 0, -1, withscores=True)}
        for key in store.scan_iter(match="*:group:*")
    }


async def test_sockets_outlive_the_group_expiry_on_the_core_layer(sites, redis):
    liveblog = sites("liveblog", servers=1, env=CORE)
    chat = sites("chat", servers=1, env=CORE)
    sketchpad = sites("sketchpad", servers=1, env=CORE)
    blog_script, chat_script, pad_script = liveblog.script(), chat.script(), sketchpad.script()
    cookies = await chat_script.acall("chat_users", names=["old", "timer"])
    await pad_script.acall("boards", slugs=["aging"])
    store = redis_py.Redis.from_url(redis.url)

    blog_pages = [LiveblogPage(name=f"blog{n}", slug="djangocon", urls=[liveblog.daphnes[0].url]) for n in range(3)]
    chat_pages = [
        ChatPage(name=f"chat-{user}", rooms=["lobby"], cookie=cookies[user], urls=[chat.daphnes[0].url])
        for user in cookies
    ]
    drawer, watcher = (
        BoardPage(name=name, slug="aging", urls=[sketchpad.daphnes[0].url]) for name in ("drawer", "watcher")
    )
    gallery = GalleryPage(name="gallery", urls=[sketchpad.daphnes[0].url])
    pages = [*blog_pages, *chat_pages, drawer, watcher, gallery]
    async with pages_open(pages=pages):
        joined = time.monotonic()
        before = memberships(store)
        assert before, "no group memberships in Redis: not the core layer?"
        # A socket that goes leaves its groups at once, and is not refreshed back.
        leaver = blog_pages.pop()
        await leaver.stop()

        # Three group expiries go by; every live membership stays younger than the expiry.
        oldest = 0.0
        while time.monotonic() - joined < 3 * EXPIRY + 0.5:
            now = time.time()
            current = memberships(store)
            ages = [now - score for members in current.values() for score in members.values()]
            assert ages, "every group membership is gone from Redis"
            oldest = max(oldest, *ages)
            assert max(ages) < EXPIRY, f"a membership is {max(ages):.1f} s old: {current}"
            await asyncio.sleep(0.25)
        after = memberships(store)
        gone = {member for members in before.values() for member in members} - {
            member for members in after.values() for member in members
        }
        assert len(gone) == 1, (before, after)  # the leaver's channel, and only it

        # Every socket, older than three expiries, still gets its groups' messages.
        sent = time.monotonic()
        await blog_script.acall("post", slug="djangocon", body="after three expiries")
        await chat_script.acall("message", room="lobby", username="old", text="after three expiries")
        await drawer.draw("late", [[0.3, 0.3], [0.6, 0.6]], done=True)
        await all_until(blog_pages, lambda p: p.has("after three expiries"), timeout=5, what="post")
        await all_until(chat_pages, lambda p: p.has("lobby", "after three expiries"), timeout=5, what="message")
        await watcher.until(lambda: "late" in watcher.strokes, timeout=5, what="stroke")
        version = await pad_script.acall("thumbnail_refresh", slug="aging")  # the worker's job, and its message
        await gallery.until(
            lambda: f"v={version}" in (gallery.thumbnails.get("aging") or ""), timeout=5, what="gallery"
        )
        delivered = time.monotonic() - sent
        for page in pages:
            assert page.closes == [] or page is leaver, page.name
        # Prometheus sees the same sockets: every old one still open, the leaver's closed, and no other close.
        for site, open_pages, closed in (
            (liveblog, blog_pages, 1),
            (chat, chat_pages, 0),
            (sketchpad, [drawer, watcher, gallery], 0),
        ):
            shown = site.daphnes[0].metrics()
            assert metric_value(shown, "realtime_sockets_open") == len(open_pages), shown
            assert metric_value(shown, "realtime_closes_total") == closed, shown
        for site in (liveblog, chat, sketchpad):
            assert tracebacks(site.daphnes[0].text()) == [], site.daphnes[0].text()
        record(
            f"5. sockets {3 * EXPIRY} s old on the core layer, REDIS_GROUP_EXPIRY={EXPIRY}",
            "every socket still gets its groups' messages (liveblog, chat room, board, gallery); "
            "oldest membership seen stayed under the expiry; a closed socket's membership went at once",
            **seconds_round(delivered_s=delivered, oldest_membership_s=oldest),
        )
