import re
import uuid

from pages import expect_live, log_in_as_staff
from playwright.sync_api import expect


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def post_on(page, text):
    return page.locator("#posts article").filter(has_text=text)


def test_staff_publishes_and_others_see_it_edited_and_deleted(new_page, liveblog_site):
    url = liveblog_site.urls[0]
    readers = [new_page(f"{url}/djangocon/") for _ in range(2)]
    staff = new_page(url)
    log_in_as_staff(staff, url, "/djangocon/")
    for page in [*readers, staff]:
        expect_live(page)

    text = unique("Published from the page")
    staff.get_by_label("New post").fill(text)
    staff.get_by_role("button", name="Publish").click()
    for page in [*readers, staff]:
        expect(post_on(page, text)).to_be_visible()
    expect(staff.get_by_label("New post")).to_have_value("")
    # Newest first.
    expect(readers[0].locator("#posts article").first).to_contain_text(text)

    post_id = post_on(readers[0], text).get_attribute("data-post-id")
    staff.goto(f"{url}/admin/blog/post/{post_id}/change/")
    edited = unique("Edited in the admin")
    staff.get_by_label("Body").fill(edited)
    staff.get_by_role("button", name="Save", exact=True).click()
    for page in readers:
        expect(post_on(page, edited)).to_be_visible()
        expect(post_on(page, text)).to_have_count(0)

    staff.goto(f"{url}/admin/blog/post/{post_id}/delete/")
    staff.get_by_role("button", name="Yes, I’m sure").click()
    for page in readers:
        expect(page.locator(f"#post-{post_id}")).to_have_count(0)


def test_a_post_from_another_process_reaches_pages_on_both_servers(new_page, liveblog_site):
    pages = [new_page(f"{url}/djangocon/") for url in liveblog_site.urls]
    for page in pages:
        expect_live(page)

    text = unique("From the command line")
    liveblog_site.manage("post", "djangocon", text)
    for page in pages:
        expect(post_on(page, text)).to_be_visible()


def test_a_page_that_was_offline_catches_up_in_order_without_duplicates(new_page, liveblog_site):
    page = new_page(f"{liveblog_site.urls[0]}/release-day/")
    expect_live(page)

    page.context.set_offline(True)
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    first, second = unique("Missed one"), unique("Missed two")
    liveblog_site.manage("post", "release-day", first)
    liveblog_site.manage("post", "release-day", second)
    page.context.set_offline(False)

    expect_live(page)
    expect(post_on(page, second)).to_have_count(1)
    expect(post_on(page, first)).to_have_count(1)
    bodies = page.locator("#posts article .post-body").all_inner_texts()
    assert bodies.index(second) < bodies.index(first), bodies
    assert len(bodies) == len(set(bodies)), bodies


def test_a_page_that_missed_too_much_reloads_its_list(new_page, liveblog_site):
    page = new_page(f"{liveblog_site.urls[0]}/release-day/")
    expect_live(page)

    page.context.set_offline(True)
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    marker = unique("Far too much")
    liveblog_site.manage(
        "shell",
        "-c",
        "from blog.models import Liveblog, Post\n"
        "from blog.services import post_create\n"
        "liveblog = Liveblog.objects.get(slug='release-day')\n"
        "for number in range(Post.live_retention + 1):\n"
        f"    post_create(liveblog=liveblog, body='{marker} ' + str(number))\n",
    )
    page.context.set_offline(False)

    expect_live(page)
    expect(post_on(page, marker)).to_have_count(501)
    expect(page.locator("#posts article").first).to_contain_text(f"{marker} 500")


def test_markup_in_a_post_is_shown_as_text_and_runs_nothing(new_page, liveblog_site):
    url = liveblog_site.urls[0]
    page = new_page(f"{url}/djangocon/")
    expect_live(page)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    payload = f'<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> {uuid.uuid4().hex}'
    liveblog_site.manage("post", "djangocon", payload)
    expect(post_on(page, payload)).to_have_count(1)

    reloaded = new_page(f"{url}/djangocon/")
    for shown in [page, reloaded]:
        body = post_on(shown, payload).locator(".post-body")
        expect(body).to_have_text(payload)
        expect(body.locator("img, script")).to_have_count(0)
        assert shown.evaluate("window.pwned") is None
    assert dialogs == []


def test_publishing_after_the_session_expired_says_so_and_keeps_the_text(new_page, liveblog_site):
    url = liveblog_site.urls[0]
    staff = new_page(url)
    log_in_as_staff(staff, url, "/djangocon/")
    expect_live(staff)
    liveblog_site.manage(
        "shell", "-c", "from django.contrib.sessions.models import Session; Session.objects.all().delete()"
    )

    text = unique("Written while the session expired")
    staff.get_by_label("New post").fill(text)
    staff.get_by_role("button", name="Publish").click()
    expect(staff.locator("#publish-error")).to_have_text("Your session expired: log in again, then publish.")
    expect(staff.get_by_label("New post")).to_have_value(text)
    expect(post_on(staff, text)).to_have_count(0)


def test_a_liveblog_deleted_while_open_says_so_and_stops_reconnecting(new_page, liveblog_site):
    slug = f"short-lived-{uuid.uuid4().hex[:8]}"
    liveblog_site.manage(
        "shell", "-c", f"from blog.models import Liveblog; Liveblog.objects.create(slug='{slug}', title='Short-lived')"
    )
    page = new_page(f"{liveblog_site.urls[0]}/{slug}/")
    expect_live(page)
    text = unique("Said before the end")
    liveblog_site.manage("post", slug, text)
    expect(post_on(page, text)).to_have_count(1)

    liveblog_site.manage(
        "shell", "-c", f"from blog.models import Liveblog; Liveblog.objects.get(slug='{slug}').delete()"
    )
    expect(page.locator("#liveblog-gone")).to_be_visible()
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(page.locator("#posts article")).to_have_count(0)


def test_a_connection_that_went_silent_is_noticed_by_the_heartbeat_and_replaced(new_page, liveblog_site):
    """A half-open connection (a network change, a laptop that slept): nothing is closed, nothing
    arrives. The page pings after 15 s of silence, gives up 20 s later, and reconnects (liveblog/README.md)."""
    connections = []

    def relay(page_side):
        server_side = page_side.connect_to_server()
        silent = not connections  # only the first connection dies; the reconnect goes through
        connections.append(page_side)
        page_side.on_message(lambda message: None if silent and dead else server_side.send(message))
        server_side.on_message(lambda message: None if silent and dead else page_side.send(message))

    dead = False
    page = new_page("about:blank")
    page.route_web_socket(re.compile(r"/ws/liveblog/"), relay)
    page.goto(f"{liveblog_site.urls[0]}/djangocon/")
    expect_live(page)
    dead = True  # from now on the first connection carries nothing, either way, and never closes

    text = unique("Published while the connection was silent")
    liveblog_site.manage("post", "djangocon", text)
    # Only a new connection can bring it (the reconnect itself may be too quick to catch on the badge).
    expect(post_on(page, text)).to_have_count(1, timeout=45_000)
    expect_live(page)
    assert len(connections) == 2
