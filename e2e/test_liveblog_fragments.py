"""The liveblog's fragments page (README, "The two liveblog pages"): htmx swaps in the HTML
its socket sends, with no script of ours, under the same CSP as every page."""

import json
import re
import uuid
from urllib.parse import urlsplit

import pytest
from pages import Watched, expect_live
from playwright.sync_api import Page, WebSocketRoute, expect
from test_chat import shell_output

# The extension's backoff doubles up to 64 s; a restarted server is back within a few.
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
    # No script of ours, nothing the CSP refused (htmx evaluating or styling inline would be), no console error.
    scripts = page.eval_on_selector_all("script, link[rel=modulepreload]", "all => all.map(e => e.src || e.href)")
    assert [re.sub(r"\.[0-9a-f]{12}\.js$", ".js", urlsplit(src).path) for src in scripts] == [
        "/static/frontend/vendor/htmx/htmx.min.js",  # hashed in production
        "/static/frontend/vendor/htmx-ext-ws/ws.min.js",
    ]
    watched.assert_nothing_ran()


def test_a_server_restart_is_caught_up(browse, liveblog_site, liveblog, own_server_of):
    server = own_server_of(liveblog_site)
    watched: Watched = browse(f"{server.url}/{liveblog}/fragments/")
    page = watched.page
    expect_live(page)
    before = post_publish(liveblog_site, liveblog, "Before the restart")
    expect(page.locator(f"#post-{before}")).to_be_visible()

    # Frozen, the server delivers nothing: the post published meanwhile reaches the
    # page only through the list the restarted server sends on connect.
    server.freeze()
    during = post_publish(liveblog_site, liveblog, "While the server was down")
    post_edit(liveblog_site, before, "Edited while the server was down")
    server.restart()

    expect(page.locator(f"#post-{during}")).to_be_visible(timeout=RECONNECTED)
    expect(page.locator(f"#post-{before}")).to_contain_text("Edited while the server was down")
    expect(page.locator("#posts article")).to_have_count(2)
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


def test_the_extension_s_backoff_does_not_slow_down_for_a_server_that_accepts_then_closes(
    browser, liveblog_site, liveblog
):
    """A limit, not a wish (README, "Limits, from the extension"): issue 17 allows such a
    server 10 attempts from a page in its first minute; htmx's extension makes one within
    a second of each close, as its attempt count restarts at every open. Should this fail,
    a new version changed its backoff: update the README."""
    context = browser.new_context()
    # The test's own listener (Playwright's init script, which the CSP does not apply to).
    context.add_init_script(
        "let attempts = 0;"
        "document.addEventListener('htmx:wsConnecting', () => {"
        "  document.documentElement.dataset.overTen = ++attempts > 10;"
        "});"
    )
    page = context.new_page()

    def accept_then_fail(socket: WebSocketRoute) -> None:
        # The server accepts (its first frame proves it), then the page's socket is closed as a
        # consumer failing after accept() closes it.
        socket.connect_to_server().on_message(lambda frame: socket.close(code=1011))

    page.route_web_socket(re.compile(r"/fragments/$"), accept_then_fail)
    page.goto(f"{liveblog_site.urls[0]}/{liveblog}/fragments/")
    # 11 attempts in half a minute, where 10 are allowed in a minute: each wait is under a second.
    expect(page.locator("html")).to_have_attribute("data-over-ten", "true", timeout=30_000)
    context.close()
