import re
import uuid

import pytest
from pages import CHAT_PASSWORD as PASSWORD
from pages import expect_live, log_in, log_in_as_staff
from playwright.sync_api import Page, expect


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def room(page: Page, slug: str):
    return page.locator(f'section.room[data-room="{slug}"]')


def message(page: Page, slug: str, text: str):
    return room(page, slug).locator(".message").filter(has_text=text)


def members(page: Page, slug: str):
    return room(page, slug).locator(".members li")


def say(page: Page, slug: str, text: str) -> None:
    room(page, slug).get_by_label("Message").fill(text)
    room(page, slug).get_by_role("button", name="Send").click()


def open_chat(page: Page, base_url: str, username: str, join: str) -> Page:
    """Go to the chat, in the room ``join``, logging in on the way."""
    page.goto(f"{base_url}/chat/?join={join}")
    log_in(page, username, PASSWORD)
    expect_live(page)
    expect(room(page, join)).to_be_visible()
    return page


def chat_as(new_page, base_url: str, username: str, join: str) -> Page:
    """A new browser, with ``username`` in the room ``join``."""
    return open_chat(new_page(f"{base_url}/"), base_url, username, join)


def test_people_in_a_room_see_each_other_live_across_servers_and_no_other_room_does(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "together")
    bob = chat_as(new_page, second, "bob", "together")
    carol = chat_as(new_page, first, "carol", "elsewhere")
    for page in [alice, bob]:
        expect(members(page, "together")).to_have_text(["alice", "bob"])

    hello, reply = unique("Hello bob"), unique("Hi alice")
    say(alice, "together", hello)
    for page in [alice, bob]:
        expect(message(page, "together", hello)).to_contain_text("alice")
    expect(room(alice, "together").get_by_label("Message")).to_have_value("")
    say(bob, "together", reply)
    expect(message(alice, "together", reply)).to_contain_text("bob")

    # Sent after the others: had they reached carol, they would be on her page by now.
    aside = unique("Anyone here?")
    say(carol, "elsewhere", aside)
    expect(message(carol, "elsewhere", aside)).to_be_visible()
    expect(carol.locator(".message").filter(has_text=re.compile(f"{hello}|{reply}"))).to_have_count(0)
    expect(room(carol, "together")).to_have_count(0)


def watch_socket_servers(page: Page, base_url: str) -> list[str]:
    """The server that accepted each WebSocket the page opens, in order: the replica nginx
    names in its X-Upstream header, or, with no proxy in between, the page's own server."""
    servers = []
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")

    def handshake(event):
        headers = {name.lower(): value for name, value in event["response"]["headers"].items()}
        servers.append(headers.get("x-upstream", base_url))

    cdp.on("Network.webSocketHandshakeResponseReceived", handshake)
    return servers


def test_two_browsers_on_different_replicas_talk_to_each_other(new_page, chat):
    """Behind nginx (make compose-test), both browsers use one URL and nginx spreads their sockets
    over the chat replicas; run locally, each browser uses its own daphne process."""
    first, second = chat.urls
    alice, bob = new_page("about:blank"), new_page("about:blank")
    alice_servers, bob_servers = watch_socket_servers(alice, first), watch_socket_servers(bob, second)
    open_chat(alice, first, "alice", "replicas")
    open_chat(bob, second, "bob", "replicas")
    # nginx takes turns per request: a reload, with one extra request every other time so that
    # the turns cannot keep landing the socket on alice's replica, moves bob to the other one.
    for attempt in range(20):
        if bob_servers[-1] != alice_servers[-1]:
            break
        if attempt % 2:
            bob.request.get(f"{second}/health/")
        bob.reload()
        expect_live(bob)
    assert bob_servers[-1] != alice_servers[-1], (alice_servers, bob_servers)

    hello, reply = unique("Across replicas"), unique("Received")
    say(alice, "replicas", hello)
    expect(message(bob, "replicas", hello)).to_contain_text("alice")
    say(bob, "replicas", reply)
    expect(message(alice, "replicas", reply)).to_contain_text("bob")


def test_an_anonymous_visitor_is_sent_to_the_login_page(new_page, chat):
    page = new_page(f"{chat.urls[0]}/chat/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/chat/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    # DEBUG is off: the demo accounts are neither made nor shown.
    expect(page.locator("#demo-users")).to_have_count(0)


def test_logging_out_in_one_tab_closes_the_socket_in_the_other(new_page, chat):
    url = chat.urls[0]
    first_tab = chat_as(new_page, url, "alice", "logout")
    second_tab = first_tab.context.new_page()
    second_tab.goto(f"{url}/chat/")
    expect_live(second_tab)
    expect(room(second_tab, "logout")).to_be_visible()  # the session's rooms, without asking

    second_tab.get_by_role("button", name=re.compile("Log out")).click()
    expect(second_tab).to_have_url(re.compile(r"/accounts/login/$"))
    expect(first_tab.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(first_tab.locator("#logged-out")).to_be_visible()
    expect(room(first_tab, "logout").get_by_role("button", name="Send")).to_be_disabled()


def test_logging_out_in_one_browser_leaves_the_same_user_s_other_browser_live(new_page, chat):
    first, second = chat.urls
    laptop = chat_as(new_page, first, "alice", "devices")
    phone = chat_as(new_page, second, "alice", "devices")

    laptop.get_by_role("button", name=re.compile("Log out")).click()
    expect(laptop).to_have_url(re.compile(r"/accounts/login/$"))
    text = unique("Still on the phone")
    say(phone, "devices", text)
    expect(message(phone, "devices", text)).to_be_visible()
    expect_live(phone)


def expect_logged_out(page: Page, slug: str) -> None:
    """The page stopped for good (4401 is final) and says the login ended."""
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(page.locator("#logged-out")).to_be_visible()
    expect(page.get_by_role("link", name="Log in again")).to_be_visible()
    expect(room(page, slug).get_by_role("button", name="Send")).to_be_disabled()


def test_a_password_change_closes_the_user_s_pages_in_every_browser(new_page, chat):
    first, second = chat.urls
    pages = [chat_as(new_page, first, "dave", "password"), chat_as(new_page, second, "dave", "password")]
    bob = chat_as(new_page, first, "bob", "password")

    # Elsewhere (another process, with a signal): every session of dave's is no login any more.
    chat.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "dave = get_user_model().objects.get(username='dave')\n"
        "dave.set_password('a new password for dave')\n"
        "dave.save()\n",
    )
    for page in pages:
        expect_logged_out(page, "password")
    expect(members(bob, "password")).to_have_text(["bob"])
    pages[0].reload()
    expect(pages[0]).to_have_url(re.compile(r"/accounts/login/\?next=/chat/$"))


def test_a_page_whose_session_ended_while_it_was_offline_stops_and_says_so(new_page, chat):
    page = chat_as(new_page, chat.urls[0], "erin", "expired")
    page.context.set_offline(True)
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    # What an expiry does to the session, without a signal: gone from the database.
    chat.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.sessions.models import Session\n"
        "erin = str(get_user_model().objects.get(username='erin').pk)\n"
        "for session in Session.objects.all():\n"
        "    if session.get_decoded().get('_auth_user_id') == erin:\n"
        "        session.delete()\n",
    )
    page.context.set_offline(False)
    # The handshake without a login is accepted, then closed with 4401: not refused,
    # which a browser cannot tell from a network error, and would retry for ever.
    expect_logged_out(page, "expired")


def test_a_reload_puts_the_user_back_in_their_rooms(new_page, chat):
    page = chat_as(new_page, chat.urls[0], "alice", "reload-a")
    page.locator('[data-join="reload-b"]').click()
    expect(room(page, "reload-b")).to_be_visible()
    text = unique("Before the reload")
    say(page, "reload-a", text)
    expect(message(page, "reload-a", text)).to_be_visible()

    page.reload()
    expect(page).to_have_url(re.compile(r"/chat/$"))
    expect_live(page)
    for slug in ["reload-a", "reload-b"]:
        expect(room(page, slug)).to_be_visible()
        expect(page.locator(f'[data-join="{slug}"]')).to_have_text("Joined")
    expect(message(page, "reload-a", text)).to_have_count(1)
    expect(members(page, "reload-b")).to_have_text(["alice"])


def test_a_page_that_was_offline_gets_what_it_missed_once_and_in_order(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "offline")
    bob = chat_as(new_page, second, "bob", "offline")
    before = unique("Before")
    say(bob, "offline", before)
    expect(message(alice, "offline", before)).to_be_visible()

    alice.context.set_offline(True)
    expect(alice.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    missed = [unique("Missed one"), unique("Missed two")]
    for text in missed:
        say(bob, "offline", text)
        expect(message(bob, "offline", text)).to_be_visible()
    alice.context.set_offline(False)

    expect_live(alice)
    for text in [before, *missed]:
        expect(message(alice, "offline", text)).to_have_count(1)
    assert room(alice, "offline").locator(".message-text").all_inner_texts() == [before, *missed]


def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "markup")
    bob = chat_as(new_page, second, "bob", "markup")
    dialogs = []
    for page in [alice, bob]:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    payload = unique('<img src=x onerror="alert(1)"><script>window.pwned=1</script><b>bold</b>')
    say(alice, "markup", payload)
    expect(message(bob, "markup", payload)).to_have_count(1)

    bob.reload()  # and from the history, too
    for page in [alice, bob]:
        text = message(page, "markup", payload).locator(".message-text")
        expect(text).to_have_text(payload)
        expect(room(page, "markup").locator(".messages img, .messages script, .messages b")).to_have_count(0)
        assert page.evaluate("window.pwned") is None
    assert dialogs == []


def test_presence_lists_both_and_drops_one_when_their_last_tab_closes(new_page, chat):
    first, second = chat.urls
    alice = chat_as(new_page, first, "alice", "presence")
    bob = chat_as(new_page, second, "bob", "presence")
    expect(members(alice, "presence")).to_have_text(["alice", "bob"])

    bob_again = bob.context.new_page()
    bob_again.goto(f"{first}/chat/")
    expect(members(bob_again, "presence")).to_have_text(["alice", "bob"])
    bob.close()
    # bob's other tab keeps him listed: alice's list changes next when carol comes, and still has bob.
    chat_as(new_page, second, "carol", "presence")
    expect(members(alice, "presence")).to_have_text(["alice", "bob", "carol"])

    bob_again.close()
    expect(members(alice, "presence")).to_have_text(["alice", "carol"])


@pytest.fixture
def doomed_server(chat):
    """One more chat server (a daphne process, or a container of the compose stack), for the test to kill."""
    url = chat.serve()
    return url, chat.servers[-1]


def test_presence_drops_a_user_whose_server_process_died(new_page, chat, doomed_server):
    doomed_url, doomed_process = doomed_server
    alice = chat_as(new_page, chat.urls[0], "alice", "crash")
    bob = chat_as(new_page, doomed_url, "bob", "crash")
    expect(members(alice, "crash")).to_have_text(["alice", "bob"])

    doomed_process.kill()  # no goodbye: bob's entry is left to expire
    doomed_process.wait()
    expect(bob.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    # Within CHAT_PRESENCE_TTL + CHAT_PRESENCE_HEARTBEAT (6 + 2 seconds).
    expect(members(alice, "crash")).to_have_text(["alice"], timeout=20_000)


def test_the_chat_the_sketchpad_and_the_liveblog_keep_their_logins_side_by_side(
    new_page, chat, sketchpad_site, liveblog_site
):
    """One browser, the three sites on one host: cookies ignore ports, so each site's
    session cookie must have a name of its own or opening one site logs you out of another."""
    chat_url, sketchpad_url, liveblog_url = chat.urls[0], sketchpad_site.urls[0], liveblog_site.urls[0]
    page = open_chat(new_page(chat_url), chat_url, "alice", "sites")
    text = unique("Before the other sites")
    say(page, "sites", text)
    expect(message(page, "sites", text)).to_be_visible()

    # The board puts an author id in the sketchpad's session: it starts one of its own.
    page.goto(f"{sketchpad_url}/sandbox/")
    expect_live(page)
    log_in_as_staff(page, liveblog_url, "/djangocon/")
    expect(page.get_by_label("New post")).to_be_visible()

    page.goto(f"{chat_url}/chat/")
    expect_live(page)
    text = unique("After the other sites")
    say(page, "sites", text)
    expect(message(page, "sites", text)).to_be_visible()

    page.goto(f"{liveblog_url}/djangocon/")
    expect_live(page)
    expect(page.get_by_label("New post")).to_be_visible()
