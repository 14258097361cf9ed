"""3. A daphne process stops: SIGTERM (a deploy, a scale-down), then SIGKILL (a
crash, the OOM killer), with pages of all three demos on it.

On SIGTERM every socket of the process is closed with 1012 (service restart)
before daphne cancels its consumers (realtime_common.sockets), and pages are
back, on another process, within the page's restart spread (0.5-5 s after a
1012, socket.js) and one more attempt. On SIGKILL they see the connection drop
(1006) and come back with backoff on another process. Either way nothing stored
meanwhile is missed, and chat presence drops the users of the dead process who
do not come back within CHAT_PRESENCE_TTL + CHAT_PRESENCE_HEARTBEAT (6 + 2 s).
"""

import time

from client import RESTART_SPREAD, BoardPage, ChatPage, LiveblogPage, Page, all_until, backoff_ceiling, pages_open
from conftest import SIGKILL, SIGTERM, record, tracebacks

from realtime_common.testing.metrics import metric_value

# After a 1012 a page waits at most the restart spread (5 s); if that attempt finds the stopped
# process, it tries another one after its second backoff (at most 1 s). A second for the close
# to arrive and the handshakes. A page that waited out a long backoff (15 or 30 s) would fail this.
RECONNECT_WITHIN = RESTART_SPREAD[1] + backoff_ceiling(attempt=1) + 1.0
PRESENCE_WITHIN = 6.0 + 2.0  # CHAT_PRESENCE_TTL + CHAT_PRESENCE_HEARTBEAT (the chat's settings)


def reconnected_after(page, at: float) -> float | None:
    later = [when for when, _ in page.opens if when > at]
    return later[0] - at if later else None


def close_after(page, at: float) -> tuple[float, int] | None:
    later = [(when - at, code) for when, code in page.closes if when > at]
    return later[0] if later else None


async def test_daphne_stopped_by_sigterm_then_sigkill(sites):
    liveblog = sites("liveblog", servers=3)
    chat = sites("chat", servers=3)
    sketchpad = sites("sketchpad", servers=3)
    blog_script, chat_script, pad_script = liveblog.script(), chat.script(), sketchpad.script()
    users = ["amy", "bo", "cy", "di", "ed", "gone-on-term", "gone-on-kill"]
    cookies = await chat_script.acall("chat_users", names=users)
    await pad_script.acall("boards", slugs=["stopped"])

    def urls(site, first: int):  # first the page's own server, then the others in order
        own = [server.url for server in site.daphnes]
        return own[first:] + own[:first]

    # Pages on the first two servers of each site (the third takes them over at the end).
    blog_pages = [LiveblogPage(name=f"blog{n}", slug="djangocon", urls=urls(liveblog, n % 2)) for n in range(4)]
    chat_pages = [
        ChatPage(name=f"chat-{user}", rooms=["lobby"], cookie=cookies[user], urls=urls(chat, n % 2))
        for n, user in enumerate(users[:5])
    ]
    board_pages = [BoardPage(name=f"board{n}", slug="stopped", urls=urls(sketchpad, n % 2)) for n in range(4)]
    # Users who close their laptop as their server goes: they never come back.
    leaving = {
        "gone-on-term": ChatPage(
            name="chat-gone-on-term", rooms=["lobby"], cookie=cookies["gone-on-term"], urls=urls(chat, 0)
        ),
        "gone-on-kill": ChatPage(
            name="chat-gone-on-kill", rooms=["lobby"], cookie=cookies["gone-on-kill"], urls=urls(chat, 1)
        ),
    }
    pages = [*blog_pages, *chat_pages, *board_pages]
    async with pages_open(pages=[*pages, *leaving.values()]):
        for page in leaving.values():
            page.stopped = True  # it will not reconnect
        watcher = chat_pages[1]  # on the second server: sees the first one's users leave
        await watcher.until(
            lambda: {"gone-on-term", "gone-on-kill"} <= watcher.members["lobby"], timeout=5, what="members"
        )
        # Prometheus sees every page: each site's open sockets, summed over its processes.
        staying = {liveblog: len(blog_pages), chat: len(chat_pages), sketchpad: len(board_pages)}
        for site, open_now in (
            (liveblog, staying[liveblog]),
            (chat, staying[chat] + len(leaving)),
            (sketchpad, staying[sketchpad]),
        ):
            shown = [server.metrics() for server in site.daphnes]
            assert sum(metric_value(one, "realtime_sockets_open") for one in shown) == open_now, shown
        # SIGTERM the first server of each site.
        term_at = time.monotonic()
        for site in (liveblog, chat, sketchpad):
            site.daphnes[0].signal(SIGTERM)
        # Saved while its pages move: they must get it.
        await blog_script.acall("post", slug="djangocon", body="saved during the SIGTERM")
        await chat_script.acall("message", room="lobby", username="amy", text="saved during the SIGTERM")
        on_first = [page for page in pages if page.urls[0] in first_urls(liveblog, chat, sketchpad)]
        await all_until(
            on_first,
            lambda p: reconnected_after(p, term_at) is not None,
            timeout=RECONNECT_WITHIN + 3,
            what="back after SIGTERM",
        )
        term_closes = [close_after(page, term_at) for page in on_first]
        term_back = [reconnected_after(page, term_at) for page in on_first]
        await nothing_missed_check(signal="SIGTERM", pages=pages, drawer=board_pages[1])
        term_left = await presence_drop_wait(watcher=watcher, user="gone-on-term", since=term_at)
        term_exit = [site.daphnes[0].process.wait(timeout=10) for site in (liveblog, chat, sketchpad)]

        # SIGKILL the second server of each site: every page is now on it.
        await all_until(pages, lambda p: p.open, timeout=5, what="all open")
        kill_at = time.monotonic()
        for site in (liveblog, chat, sketchpad):
            site.daphnes[1].signal(SIGKILL)
        await blog_script.acall("post", slug="djangocon", body="saved during the SIGKILL")
        await chat_script.acall("message", room="lobby", username="bo", text="saved during the SIGKILL")
        await all_until(
            pages, lambda p: reconnected_after(p, kill_at) is not None, timeout=10, what="back after SIGKILL"
        )
        kill_closes = [close_after(page, kill_at) for page in pages]
        kill_back = [reconnected_after(page, kill_at) for page in pages]
        await nothing_missed_check(signal="SIGKILL", pages=pages, drawer=board_pages[0])
        kill_left_total = await presence_drop_wait(watcher=chat_pages[0], user="gone-on-kill", since=kill_at)

        # What the pages saw, and how fast they were back.
        assert {code for _, code in term_closes} == {1012}, term_closes
        assert max(term_back) <= RECONNECT_WITHIN, term_back
        assert {code for _, code in kill_closes} == {1006}, kill_closes
        assert term_left <= PRESENCE_WITHIN + 1.0 and kill_left_total <= PRESENCE_WITHIN + 1.0, (
            term_left,
            kill_left_total,
        )
        for page in blog_pages:
            assert page.duplicates == 0
        for site in (liveblog, chat, sketchpad):
            third = site.daphnes[2]
            # Every page moved to the third process: it counts them open, accepted, and none closed.
            shown = third.metrics()
            assert metric_value(shown, "realtime_sockets_open") == staying[site], shown
            assert metric_value(shown, "realtime_handshakes_total", outcome="accepted") == staying[site], shown
            assert metric_value(shown, "realtime_closes_total") == 0, shown
            assert third.alive()
            assert tracebacks(third.text()) == [], third.text()
            assert "closed" in site.daphnes[0].text() and "(service restart)" in site.daphnes[0].text()
        record(
            "3a. daphne SIGTERM (3 sites, pages on it reconnect elsewhere)",
            f"close code 1012 on every page; exit codes {term_exit}; the leaving user dropped from presence",
            reconnect_max_s=round(max(term_back), 2),
            close_seen_max_s=round(max(when for when, _ in term_closes), 3),
            presence_drop_s=round(term_left, 2),
        )
        record(
            "3b. daphne SIGKILL (3 sites, every page on it)",
            "close code 1006 on every page; back on the third process; nothing missed",
            reconnect_max_s=round(max(kill_back), 2),
            reconnect_median_s=round(sorted(kill_back)[len(kill_back) // 2], 2),
            presence_drop_s=round(kill_left_total, 2),
        )


async def nothing_missed_check(*, signal: str, pages: list[Page], drawer: BoardPage) -> None:
    """What was saved while the pages moved ("saved during the <signal>": a post, a
    message in lobby) reaches every page of its demo, and a stroke ``drawer`` draws
    once they are back ("after-<signal>") every board."""
    text, stroke = f"saved during the {signal}", f"after-{signal}"
    blog_pages, chat_pages, board_pages = (
        [page for page in pages if isinstance(page, kind)] for kind in (LiveblogPage, ChatPage, BoardPage)
    )
    await all_until(blog_pages, lambda p: p.has(text), timeout=5, what=f"post after {signal}")
    await all_until(chat_pages, lambda p: p.has("lobby", text), timeout=5, what=f"message after {signal}")
    await drawer.draw(stroke, [[0.2, 0.2], [0.3, 0.3]], done=True)
    await all_until(board_pages, lambda p: stroke in p.strokes, timeout=5, what=f"stroke after {signal}")


async def presence_drop_wait(*, watcher: ChatPage, user: str, since: float) -> float:
    """Seconds from ``since`` until the watcher's lobby no longer lists ``user``."""
    await watcher.until(
        lambda: user not in watcher.members["lobby"], timeout=PRESENCE_WITHIN + 2, what=f"{user} leaves"
    )
    return time.monotonic() - since


def first_urls(*sites) -> set[str]:
    return {site.daphnes[0].url for site in sites}
