"""The liveblog's fragments page (liveblog/README.md, "The two liveblog pages"): htmx swaps in
the HTML its socket sends, under the same CSP as every page; one htmx extension of ours keeps
its connection badge and its reconnects as the JSON page's ("The fragments page's one script")."""

import json
import re
import uuid
from itertools import pairwise
from urllib.parse import urlsplit

import pytest
from pages import Watched, expect_live
from playwright.sync_api import Page, WebSocketRoute, expect
from test_chat import shell_output

# A restarted server is back within a few seconds, and the page's next attempt (0.5, 1, 2, 4 s... apart) soon after.
RECONNECTED = 30_000


@pytest.fixture
def liveblog(liveblog_site) -> str:
    """A liveblog of the test's own: its list holds only the test's posts."""
    slug = f"fragments-{uuid.uuid4().hex[:8]}"
    liveblog_site.manage(
        "shell",
        "--no-imports",
        "-c",
        f"from blog.models import Liveblog; Liveblog.objects.create(slug={slug!r}, title='Fragments')",
    )
    return slug


def post_publish(site, slug: str, body: str) -> int:
    return int(
        shell_output(
            site,
            code="from blog.models import Liveblog; from blog.services import post_create; "
            f"print(post_create(liveblog=Liveblog.objects.get(slug={slug!r}), body={body!r}).pk)",
        )
    )


def post_edit(site, post_id: int, body: str) -> None:
    shell_output(
        site,
        code="from blog.models import Post; from blog.services import post_update; "
        f"post_update(post=Post.objects.get(pk={post_id}), body={body!r})",
    )


def post_remove(site, post_id: int) -> None:
    shell_output(
        site,
        code="from blog.models import Post; from blog.services import post_delete; "
        f"post_delete(post=Post.objects.get(pk={post_id}))",
    )


def expect_as_on_reload(page: Page, fresh: Page, post_id: int) -> None:
    """The post's element, once htmx settled it, is byte for byte what a fresh page renders."""
    article = page.locator(f"#post-{post_id}")
    expect(article).to_have_attribute("class", "post")  # htmx's htmx-added/htmx-settling classes gone
    fresh.reload()
    assert article.evaluate("element => element.outerHTML") == fresh.locator(f"#post-{post_id}").evaluate(
        "element => element.outerHTML"
    )


def posts_shown(page: Page) -> list[tuple[str, str]]:
    """(id, body HTML) of each post, in the order shown."""
    return json.loads(
        page.eval_on_selector_all(
            "#posts article",
            "articles => JSON.stringify(articles.map(a => [a.id, a.querySelector('.post-body').innerHTML]))",
        )
    )


def test_a_post_published_edited_and_deleted_elsewhere_appears_changes_and_disappears(
    browse, new_page, liveblog_site, liveblog
):
    url = f"{liveblog_site.urls[0]}/{liveblog}/fragments/"
    watched: Watched = browse(url)
    page = watched.page
    expect_live(page)
    expect(page.locator("#no-posts")).to_be_visible()
    fresh = new_page(url)

    post_id = post_publish(liveblog_site, liveblog, "Published <b>elsewhere</b>")
    expect(page.locator(f"#post-{post_id}")).to_contain_text("Published <b>elsewhere</b>")
    expect(page.locator("#no-posts")).to_be_hidden()
    expect_as_on_reload(page, fresh, post_id)

    second = post_publish(liveblog_site, liveblog, "Second")
    expect(page.locator("#posts article").first).to_have_id(f"post-{second}")  # newest first
    post_edit(liveblog_site, post_id, "Edited elsewhere")
    expect(page.locator(f"#post-{post_id}")).to_contain_text("Edited elsewhere")
    expect_as_on_reload(page, fresh, post_id)

    post_remove(liveblog_site, post_id)
    expect(page.locator(f"#post-{post_id}")).to_have_count(0)
    expect(page.locator("#posts article")).to_have_count(1)
    # htmx, its extension and ours only; nothing the CSP refused (htmx evaluating or styling inline would be), no
    # console error.
    scripts = page.eval_on_selector_all("script, link[rel=modulepreload]", "all => all.map(e => e.src || e.href)")
    assert [re.sub(r"\.[0-9a-f]{12}\.js$", ".js", urlsplit(src).path) for src in scripts] == [
        "/static/frontend/vendor/htmx/htmx.min.js",  # hashed in production
        "/static/frontend/vendor/htmx-ext-ws/ws.min.js",
        "/static/frontend/js/htmx-socket-state.js",
    ]
    # What our module imports is hashed as it is (realtime_common.staticfiles), never a copy an older deploy left.
    modules = page.evaluate(
        "performance.getEntriesByType('resource').map(e => new URL(e.name).pathname).filter(p => p.endsWith('.js'))"
    )
    assert {re.sub(r"\.[0-9a-f]{12}\.js$", ".js", path) for path in modules if "/frontend/js/" in path} == {
        "/static/frontend/js/htmx-socket-state.js",
        "/static/frontend/js/socket.js",
        "/static/frontend/js/elements.js",
    }
    assert all(re.search(r"\.[0-9a-f]{12}\.js$", path) for path in modules), modules
    watched.assert_nothing_ran()


def test_a_server_restart_is_caught_up(browse, liveblog_site, liveblog, own_server_of):
    server = own_server_of(liveblog_site)
    watched: Watched = browse(f"{server.url}/{liveblog}/fragments/")
    page = watched.page
    expect_live(page)
    before = post_publish(liveblog_site, liveblog, "Before the restart")
    expect(page.locator(f"#post-{before}")).to_be_visible()
    # Each state the badge shows from now on: the outage may be over before expect() polls again.
    page.evaluate(
        """() => {
          const badge = document.getElementById('connection-state');
          window.__badge = [];
          new MutationObserver(() => window.__badge.push([badge.dataset.socketState, badge.textContent]))
            .observe(badge, { attributeFilter: ['data-socket-state'] });
        }"""
    )

    # Frozen, the server delivers nothing: the post published meanwhile reaches the
    # page only through the list the restarted server sends on connect.
    server.freeze()
    during = post_publish(liveblog_site, liveblog, "While the server was down")
    post_edit(liveblog_site, before, "Edited while the server was down")
    server.restart()

    expect(page.locator(f"#post-{during}")).to_be_visible(timeout=RECONNECTED)
    expect(page.locator(f"#post-{before}")).to_contain_text("Edited while the server was down")
    expect(page.locator("#posts article")).to_have_count(2)
    expect_live(page)
    # The JSON page's badge, in its words, driven by the extension's events.
    assert page.evaluate("window.__badge") == [["reconnecting", "Reconnecting…"], ["open", "Live"]]
    # Not assert_nothing_ran(): the browser logs each refused connection of the outage as an error.
    assert watched.violations == []


def test_the_json_page_and_the_fragments_page_agree(new_page, liveblog_site, liveblog):
    # The fragments page as a reader finds it, by the JSON page's link; the JSON page on the other server.
    fragments_page = new_page(f"{liveblog_site.urls[0]}/{liveblog}/")
    fragments_page.locator("#other-page").click()
    expect(fragments_page).to_have_url(f"{liveblog_site.urls[0]}/{liveblog}/fragments/")
    json_page = new_page(f"{liveblog_site.urls[1]}/{liveblog}/")
    for page in [json_page, fragments_page]:
        expect_live(page)

    ids = [post_publish(liveblog_site, liveblog, f"Post {n} https://example.com/{n}\n\nline") for n in range(4)]
    post_edit(liveblog_site, ids[1], "Edited <i>again</i>")
    post_remove(liveblog_site, ids[2])
    last = post_publish(liveblog_site, liveblog, "Last")
    for page in [json_page, fragments_page]:
        expect(page.locator("#posts article").first).to_have_id(f"post-{last}")
        expect(page.locator(f"#post-{ids[2]}")).to_have_count(0)
        expect(page.locator(f"#post-{ids[1]}")).to_contain_text("Edited <i>again</i>")
    assert posts_shown(fragments_page) == posts_shown(json_page)
    assert len(posts_shown(json_page)) == 4


def test_a_server_that_accepts_then_closes_gets_the_json_page_s_backoff(browser, liveblog_site, liveblog):
    """Issue 17's bound, which the JSON page keeps: a server that accepts then closes gets at most
    9 attempts from a page in a minute. htmx's extension alone starts its count over at every
    open, so it made one within a second of each close; our extension paces it by the JSON page's
    policy. With every wait drawn the shortest (the server's worst case), attempts come at least
    0.25, 0.5, 1, 2 and 4 s apart, doubling up to 15 s: a 10th could come only after 60.75 s."""
    context = browser.new_context()
    # The test's own listener (Playwright's init script, which the CSP does not apply to).
    context.add_init_script(
        "Math.random = () => 0;"
        "window.__attempts = [];"
        "document.addEventListener('htmx:wsConnecting', () => window.__attempts.push(performance.now()));"
    )
    page = context.new_page()

    def accept_then_fail(socket: WebSocketRoute) -> None:
        # The server accepts (its first frame proves it), then the page's socket is closed as a
        # consumer failing after accept() closes it.
        socket.connect_to_server().on_message(lambda frame: socket.close(code=1011))

    page.route_web_socket(re.compile(r"/fragments/$"), accept_then_fail)
    page.goto(f"{liveblog_site.urls[0]}/{liveblog}/fragments/")
    page.wait_for_function("() => window.__attempts.length >= 6", timeout=30_000)
    attempts = page.evaluate("window.__attempts.slice(0, 6)")
    gaps = [later - earlier for earlier, later in pairwise(attempts)]
    assert all(gap >= 250 * 2**n for n, gap in enumerate(gaps)), f"ms between attempts: {gaps}"
    context.close()


def test_a_close_htmx_s_extension_does_not_retry_is_retried(new_page, liveblog_site, liveblog):
    """daphne's --websocket_timeout closes with 1000, a proxy with 1001: htmx's extension alone
    stops for good after either; ours reconnects, through htmx-ext-ws's own reconnect()."""
    page = new_page(f"{liveblog_site.urls[0]}/{liveblog}/fragments/")
    expect_live(page)
    connections = []

    def close_the_first_with_1000(socket: WebSocketRoute) -> None:
        connections.append(socket)
        server = socket.connect_to_server()
        if len(connections) == 1:
            # The list the server sends on connect proves the connection is up: then it times out.
            server.on_message(lambda frame: socket.close(code=1000))

    page.route_web_socket(re.compile(r"/fragments/$"), close_the_first_with_1000)
    page.reload()
    expect(page.locator("#connection-state")).to_have_text("Reconnecting…")
    expect_live(page)
    assert len(connections) == 2
    after = post_publish(liveblog_site, liveblog, "After the timeout")
    expect(page.locator(f"#post-{after}")).to_be_visible()


def test_a_deleted_liveblog_says_so_and_stays_disconnected(browse, liveblog_site, liveblog):
    watched: Watched = browse(f"{liveblog_site.urls[0]}/{liveblog}/fragments/")
    page = watched.page
    expect_live(page)
    liveblog_site.manage(
        "shell",
        "--no-imports",
        "-c",
        f"from blog.models import Liveblog; Liveblog.objects.get(slug={liveblog!r}).delete()",
    )
    expect(page.locator("#liveblog-gone")).to_be_visible()
    # The 4404 is final: not "Reconnecting…" to a liveblog that is gone.
    expect(page.locator("#connection-state")).to_have_text("Disconnected")
    assert watched.violations == []
