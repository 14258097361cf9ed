"""2. Redis dies (SIGKILL) while writes go on: liveblog posts saved by another
process, chat messages sent on sockets, sketchpad strokes finished on sockets;
then a new Redis starts on the same port.

Every write either succeeds (stored, with its event) or is refused with a clear
error frame (nothing stored): never half done. A broadcast that failed after
its commit is logged once (robust on_commit), and every page gets every stored
event once it catches up.
"""

import asyncio
import time

import pytest
from client import BoardPage, ChatPage, LiveblogPage, all_until, pages_open
from conftest import ScriptError, log_count, record, seconds_round, tracebacks

from realtime_common.testing.metrics import metric_value

pytestmark = pytest.mark.database

RUN = 8.0  # seconds of writing
DOWN_AT, UP_AT = 2.0, 5.0  # when Redis dies, and when a new one starts, from the first write


async def test_writes_while_redis_dies(sites, redis):
    liveblog = sites("liveblog", servers=2)
    chat = sites("chat", servers=2)
    sketchpad = sites("sketchpad", servers=2)
    blog_script, chat_script, pad_script = liveblog.script(), chat.script(), sketchpad.script()
    senders = ["sam", "sue", "sid"]
    cookies = await chat_script.acall("chat_users", names=[*senders, "viv"])
    await pad_script.acall("boards", slugs=["writes"])
    blog_urls = [server.url for server in liveblog.daphnes]
    chat_urls = [server.url for server in chat.daphnes]
    pad_urls = [server.url for server in sketchpad.daphnes]

    blog_pages = [
        LiveblogPage(name=f"blog{n}", slug="djangocon", urls=blog_urls[n % 2 :] + blog_urls[: n % 2]) for n in range(2)
    ]
    chat_pages = [
        ChatPage(
            name=f"chat-{user}", rooms=["lobby"], cookie=cookies[user], urls=chat_urls[n % 2 :] + chat_urls[: n % 2]
        )
        for n, user in enumerate([*senders, "viv"])
    ]
    drawer = BoardPage(name="drawer", slug="writes", urls=pad_urls)
    watchers = [
        BoardPage(name=f"watcher{n}", slug="writes", urls=pad_urls[n % 2 :] + pad_urls[: n % 2]) for n in range(2)
    ]
    pages = [*blog_pages, *chat_pages, drawer, *watchers]
    async with pages_open(pages=pages):
        started = time.monotonic()
        window = {}  # when Redis was down, in the test's clock

        async def outage():
            await asyncio.sleep(DOWN_AT)
            window["down"] = time.monotonic()
            await asyncio.to_thread(redis.stop, kill=True)
            window["down_done"] = time.monotonic()
            await asyncio.sleep(max(0.0, started + UP_AT - time.monotonic()))
            window["up"] = time.monotonic()
            await asyncio.to_thread(redis.start)
            window["up_done"] = time.monotonic()

        async def posts() -> list[dict]:
            outcomes, number = [], 0
            while time.monotonic() - started < RUN:
                began = time.monotonic()
                try:
                    await blog_script.acall("post", slug="djangocon", body=f"write {number}")
                    outcomes.append({"text": f"write {number}", "ok": True, "began": began, "ended": time.monotonic()})
                except ScriptError as error:
                    outcomes.append({"text": f"write {number}", "ok": False, "error": str(error), "began": began})
                number += 1
                await asyncio.sleep(0.25)
            return outcomes

        async def messages(page: ChatPage) -> list[dict]:
            outcomes, number = [], 0
            user = page.name.removeprefix("chat-")
            while time.monotonic() - started < RUN:
                text = f"{user} {number}"
                errors = len(page.errors)
                assert await page.say("lobby", text)
                try:  # its own message coming back is the acknowledgement; an error frame, the refusal
                    await page.until(lambda: page.has("lobby", text) or len(page.errors) > errors, timeout=8, what=text)
                except TimeoutError:
                    pass
                refused = page.errors[errors]["code"] if len(page.errors) > errors else None
                outcomes.append({"text": text, "ok": page.has("lobby", text), "refused": refused})
                number += 1
                await asyncio.sleep(1.25)  # under the chat's rate limit (10 per 10 s)
            return outcomes

        async def strokes() -> list[dict]:
            outcomes, number = [], 0
            while time.monotonic() - started < RUN:
                stroke = f"w{number}"
                errors = len(drawer.errors)
                await drawer.draw(stroke, [[0.1, 0.1 + number / 100]], done=False)
                await drawer.draw(stroke, [[0.9, 0.1 + number / 100]], done=True)
                # A refusal comes at once; a stored stroke gets no answer.
                try:
                    await drawer.until(lambda: len(drawer.errors) > errors, timeout=0.5)
                except TimeoutError:
                    pass
                refused = drawer.errors[errors]["code"] if len(drawer.errors) > errors else None
                outcomes.append({"stroke": stroke, "refused": refused})
                number += 1
            return outcomes

        _, post_outcomes, *rest = await asyncio.gather(
            outage(), posts(), *(messages(page) for page in chat_pages[:3]), strokes()
        )
        message_outcomes = [outcome for outcomes in rest[:-1] for outcome in outcomes]
        stroke_outcomes = rest[-1]

        # The liveblog: every save succeeded (a post needs only the database); each stored once, with its event.
        stored = await blog_script.acall("liveblog_state", slug="djangocon", marker="write ")
        stored_texts = sorted(body for _, body in stored["marked"])
        assert all(outcome["ok"] for outcome in post_outcomes), post_outcomes
        assert stored_texts == sorted(outcome["text"] for outcome in post_outcomes)
        # Each broadcast that failed (the posts saved while Redis was down) was logged once.
        sure = [o for o in post_outcomes if o["began"] > window["down_done"] and o["ended"] < window["up"]]
        maybe = [o for o in post_outcomes if o["ended"] > window["down"] and o["began"] < window["up_done"]]
        failed_logged = log_count(blog_script.log(), "in on_commit()")
        assert len(sure) <= failed_logged <= len(maybe), (failed_logged, len(sure), len(maybe))

        # The chat: a message is stored exactly when its sender got it back, and refused with an error frame otherwise.
        chat_stored = await chat_script.acall("chat_state", room="lobby", marker=" ")
        chat_texts = {text for _, text in chat_stored["marked"] if text.split(" ")[0] in senders}
        for outcome in message_outcomes:
            assert (outcome["text"] in chat_texts) == outcome["ok"], outcome
            assert outcome["ok"] or outcome["refused"] == "unavailable", outcome
        refused_messages = [o for o in message_outcomes if not o["ok"]]
        assert refused_messages, "no message was refused: Redis was not down while the chat wrote"

        # The sketchpad: a finished stroke is stored unless refused.
        pad_stored = set(await pad_script.acall("strokes", slug="writes"))
        for outcome in stroke_outcomes:
            assert (outcome["stroke"] in pad_stored) == (outcome["refused"] is None), outcome

        # Every page gets every stored event, once caught up.
        await all_until(blog_pages, lambda p: all(p.has(text) for text in stored_texts), timeout=5, what="posts")
        await all_until(
            chat_pages, lambda p: all(p.has("lobby", text) for text in chat_texts), timeout=5, what="messages"
        )
        await all_until(watchers, lambda p: pad_stored <= p.strokes, timeout=5, what="strokes")
        # The posts saved while Redis was down reached the pages by catch-up: when, after it was back?
        caught_up = max(
            arrived - window["up_done"]
            for page in blog_pages
            for arrived, frame in page.frames
            if frame.get("type") == "post.created" and any(f">{o['text']}<" in frame["post"]["html"] for o in sure)
        )
        for page in [*blog_pages, *chat_pages]:
            assert page.duplicates == 0, page.name

        for site in (liveblog, chat, sketchpad):
            for server in site.daphnes:
                assert server.alive()
                unexpected = [line for line in tracebacks(server.text()) if "on_commit()" not in line]
                assert unexpected == [], server.text()
        # What Prometheus saw: each process's layer lost and back once, and as many error frames as the pages got.
        for site, site_pages in ((chat, chat_pages), (sketchpad, [drawer, *watchers])):
            shown = [server.metrics() for server in site.daphnes]
            errors = sum(metric_value(one, "realtime_error_frames_total") for one in shown)
            assert errors == sum(len(page.errors) for page in site_pages), shown
        for site in (liveblog, chat, sketchpad):
            for server in site.daphnes:
                shown = server.metrics()
                assert metric_value(shown, "realtime_channel_layer_up") == 1, (server.url, shown)
                assert metric_value(shown, "realtime_channel_layer_reconnects_total") == 1, (server.url, shown)
        pad_logs = "".join(server.text() for server in sketchpad.daphnes)
        assert log_count(pad_logs, "group_send: the channel layer is unavailable") <= 2  # once per process and outage

        record(
            "2. Redis killed during writes (posts, chat messages, strokes), restarted 3 s later",
            f"posts {len(post_outcomes)}/{len(post_outcomes)} stored, {failed_logged} failed broadcasts logged once each; "
            f"chat {len(message_outcomes) - len(refused_messages)} stored, {len(refused_messages)} refused 'unavailable', none half done; "
            f"strokes {len(pad_stored)}/{len(stroke_outcomes)} stored",
            **seconds_round(posts_of_the_outage_on_every_page_s=caught_up, outage_s=window["up_done"] - window["down"]),
        )
