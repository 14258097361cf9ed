"""The chat's page on one origin and its socket on another (a socket domain), where the page's
cookie does not go: before each connect the page POSTs for a single-use ticket, and opens the
socket at the ticket's URL (chat/README.md: the chat protocol).

Run locally, one daphne process serves the page at http://127.0.0.1:<port> with
DJANGO_SOCKET_ORIGIN=ws://localhost:<other port>, and another the sockets there, accepting that
page's origin: a browser keeps cookies per host, so 127.0.0.1's session cookie never reaches
localhost. Against the compose stack (make compose-test): its chat pages on :8002 and their
sockets at ws://ws.localhost:8000, through nginx (E2E_CHAT_SOCKET_ORIGIN)."""

import os
import re

import pytest
from playwright.sync_api import Page, expect
from test_chat import chat_as, message, open_chat, say, unique

from realtime_common.testing.servers import ComposeSite, free_port

ROOM = "socket-domain"


@pytest.fixture(scope="module")
def socket_domain(chat) -> tuple[str, str]:
    """The base URL of a chat page whose sockets are elsewhere, and the origin they are on."""
    if isinstance(chat, ComposeSite):
        return chat.urls[0], os.environ.get("E2E_CHAT_SOCKET_ORIGIN", "ws://ws.localhost:8000")
    page_port = free_port()
    socket_port = free_port()
    while socket_port == page_port:
        socket_port = free_port()
    socket_origin = f"ws://localhost:{socket_port}"
    chat.serve(port=socket_port, env={"DJANGO_WEBSOCKET_ORIGINS": f"http://127.0.0.1:{page_port}"})
    return chat.serve(port=page_port, env={"DJANGO_SOCKET_ORIGIN": socket_origin}), socket_origin


def watch(page: Page) -> tuple[list[str], list[str]]:
    """The URL of each socket the page opens, and every Content-Security-Policy error it logs."""
    sockets, refusals = [], []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.on("console", lambda entry: refusals.append(entry.text) if "Content Security Policy" in entry.text else None)
    return sockets, refusals


def ticket_of(url: str) -> str:
    return re.search(r"[?&]ticket=([^&]+)", url)[1]


def test_a_page_talks_over_a_socket_on_another_origin_and_reconnects_with_a_new_ticket(new_page, chat, socket_domain):
    page_url, socket_origin = socket_domain
    alice = new_page("about:blank")
    sockets, refusals = watch(alice)
    open_chat(alice, page_url, "alice", ROOM)
    bob = chat_as(new_page, chat.urls[0], "bob", ROOM)

    assert sockets[0].startswith(f"{socket_origin}/ws/chat/?ticket="), sockets
    hello, reply = unique("Over a ticket"), unique("Received")
    say(alice, ROOM, hello)
    expect(message(bob, ROOM, hello)).to_contain_text("alice")
    say(bob, ROOM, reply)
    expect(message(alice, ROOM, reply)).to_contain_text("bob")

    # Offline, the ticket cannot be fetched either; back online, a new one, and what was missed.
    alice.context.set_offline(True)
    expect(alice.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    missed = unique("While you were away")
    say(bob, ROOM, missed)
    expect(message(bob, ROOM, missed)).to_be_visible()
    alice.context.set_offline(False)
    expect(message(alice, ROOM, missed)).to_have_count(1)
    assert len(sockets) >= 2 and sockets[-1].startswith(f"{socket_origin}/ws/chat/?ticket="), sockets
    assert len({ticket_of(url) for url in sockets}) == len(sockets), "each socket has a ticket of its own"
    assert refusals == []


def test_logging_out_closes_the_socket_on_the_other_origin(new_page, chat, socket_domain):
    page_url, _ = socket_domain
    first_tab = chat_as(new_page, page_url, "carol", ROOM)
    second_tab = first_tab.context.new_page()
    second_tab.goto(f"{page_url}/chat/")
    second_tab.get_by_role("button", name=re.compile("Log out")).click()
    expect(second_tab).to_have_url(re.compile(r"/accounts/login/$"))
    # The ticket's socket was the session's: closed 4401 with it, and the page says so.
    expect(first_tab.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(first_tab.locator("#logged-out")).to_be_visible()


def test_a_refused_ticket_says_the_site_refused_the_page_rather_than_that_it_logged_out(new_page, chat, socket_domain):
    page_url, _ = socket_domain
    page = open_chat(new_page("about:blank"), page_url, "bob", ROOM)
    # The session is still a login, but the ticket view refuses (as it does a stale page's CSRF token):
    # not a logout, which has the page offer to log in again (the test below).
    page.route(re.compile(r"/ws-ticket/$"), lambda route: route.fulfill(status=403))
    page.context.set_offline(True)
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    page.context.set_offline(False)

    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(page.locator("#chat-ended")).to_contain_text("refused this page a connection")
    expect(page.locator("#logged-out")).to_be_hidden()


def test_a_ticket_refused_for_want_of_a_login_says_the_page_was_logged_out(new_page, chat, socket_domain):
    page_url, _ = socket_domain
    page = open_chat(new_page("about:blank"), page_url, "bob", ROOM)
    # The ticket view's answer once the session is no login (e.g. it expired while the page was offline).
    body = '{"error": "not_logged_in", "detail": "Log in first."}'
    page.route(
        re.compile(r"/ws-ticket/$"), lambda route: route.fulfill(status=401, content_type="application/json", body=body)
    )
    page.context.set_offline(True)
    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "reconnecting")
    page.context.set_offline(False)

    expect(page.locator("#connection-state")).to_have_attribute("data-socket-state", "closed")
    expect(page.locator("#logged-out")).to_be_visible()
    expect(page.locator("#logged-out").get_by_role("link", name="Log in again")).to_be_visible()
    expect(page.locator("#chat-ended")).to_be_hidden()
