"""The chat's sockets on another origin, logged in by a ticket (realtime_common.tickets):
POST /ws-ticket/ gives one to a logged-in page, and a socket that brings it is the
browser's session and user, as a cookie socket is; a ticket reused, expired, tampered
with or of another site is refused at the handshake."""

import json
import time
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import pytest
from asgiref.sync import sync_to_async
from django.core import signing
from django.test import Client

from realtime_common.tickets import TICKET_SECONDS
from rooms.sessions import CLOSE_LOGGED_OUT
from tests.helpers import Browser, join, say


def ticket_get(browser: Browser) -> dict:
    response = browser.client.post("/ws-ticket/")
    assert response.status_code == 200, response.content
    return response.json()


def ticket_path(grant: dict) -> str:
    """The path and query of the grant's URL: what the test application is given."""
    url = urlsplit(grant["url"])
    return f"{url.path}?{url.query}"


@pytest.fixture
def alice(users) -> Client:
    client = Client()
    client.force_login(users["alice"])
    return client


class TestView:
    pytestmark = pytest.mark.django_db

    def test_a_logged_in_page_gets_a_ticket_and_the_url_of_its_socket(self, alice):
        response = alice.post("/ws-ticket/")
        grant = response.json()
        assert set(grant) == {"ticket", "url", "expires_in"}
        assert grant["url"].startswith("ws://testserver/ws/chat/?ticket=")
        assert 0 < grant["expires_in"] == TICKET_SECONDS <= 30
        assert alice.session.session_key not in response.content.decode()
        assert "no-store" in response["Cache-Control"]

    def test_with_a_socket_origin_the_url_leads_there(self, alice, settings):
        settings.SOCKET_ORIGIN = "wss://ws.example.com"
        assert alice.post("/ws-ticket/").json()["url"].startswith("wss://ws.example.com/ws/chat/?ticket=")

    def test_tickets_past_the_user_s_limit_are_refused_429_until_the_window_ends(self, alice, settings):
        settings.CHAT_TICKET_LIMIT, settings.CHAT_TICKET_SECONDS = 3, 3600  # one window for the whole test
        assert [alice.post("/ws-ticket/").status_code for _ in range(4)] == [200, 200, 200, 429]
        assert alice.post("/ws-ticket/").json()["error"] == "rate_limited"

    def test_each_ticket_is_new(self, alice):
        assert alice.post("/ws-ticket/").json()["ticket"] != alice.post("/ws-ticket/").json()["ticket"]

    def test_no_login_no_ticket(self, client):
        response = client.post("/ws-ticket/")
        assert (response.status_code, response["Content-Type"]) == (401, "application/json")
        assert response.json()["error"] == "not_logged_in"

    def test_only_post(self, alice):
        assert alice.get("/ws-ticket/").status_code == 405

    def test_the_csrf_token_is_required(self, users, settings):
        client = Client(enforce_csrf_checks=True)
        client.force_login(users["alice"])
        assert client.post("/ws-ticket/").status_code == 403
        client.get("/chat/")  # sets the CSRF cookie, as the page does
        token = client.cookies[settings.CSRF_COOKIE_NAME].value
        assert client.post("/ws-ticket/", headers={"x-csrftoken": token}).status_code == 200

    @pytest.mark.parametrize(("socket_origin", "tickets"), [("", False), ("ws://127.0.0.1:8012", True)])
    def test_the_page_fetches_tickets_only_when_its_sockets_are_elsewhere(
        self, alice, settings, socket_origin, tickets
    ):
        settings.SOCKET_ORIGIN = socket_origin
        html = alice.get("/chat/").content.decode()
        assert 'data-socket-url="/ws/chat/"' in html
        assert ('data-ticket-url="/ws-ticket/"' in html) is tickets
        assert ("data-csrf-token=" in html) is tickets


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("channel_layer")
class TestSocket:
    async def test_a_ticket_socket_is_the_user_and_joins_and_talks_as_a_cookie_socket(
        self, logged_in, connect, users, chat_rooms
    ):
        alice = await logged_in(users["alice"])
        grant = await sync_to_async(ticket_get)(alice)
        # No cookie: only the ticket says who this is.
        socket, connected = await connect(ticket_path(grant))
        assert connected
        assert (await join(socket, "lobby"))["members"] == ["alice"]
        await say(socket, "lobby", "hello over a ticket")
        frame = await socket.receive_json_from()
        assert (frame["user"], frame["text"]) == ("alice", "hello over a ticket")

    async def test_a_ticket_socket_is_the_browser_s_session_its_rooms_and_since(
        self, logged_in, connect, users, chat_rooms
    ):
        alice = await logged_in(users["alice"])
        cookie_tab = await alice.open_tab()
        await join(cookie_tab, "lobby")
        await say(cookie_tab, "lobby", "first")
        first = await cookie_tab.receive_json_from()
        await say(cookie_tab, "lobby", "second")
        await cookie_tab.receive_json_from()

        grant = await sync_to_async(ticket_get)(alice)
        socket, connected = await connect(f"{ticket_path(grant)}&since=lobby:{first['seq']}")
        assert connected
        # Put back into the session's rooms, unasked, with what came after `since`.
        frame = await socket.receive_json_from()
        assert (frame["type"], frame["room"]) == ("joined", "lobby")
        assert [event["text"] for event in frame["history"]] == ["second"]

    async def test_logging_out_closes_a_ticket_socket_like_a_cookie_socket(
        self, logged_in, connect, users, chat_rooms, settings
    ):
        settings.CHAT_PRESENCE_HEARTBEAT = 600  # only the logout can close it in time
        alice = await logged_in(users["alice"])
        cookie_tab = await alice.open_tab()
        socket, connected = await connect(ticket_path(await sync_to_async(ticket_get)(alice)))
        assert connected
        await alice.log_out()
        closed = {"type": "websocket.close", "code": CLOSE_LOGGED_OUT}
        assert await socket.receive_output(timeout=5) == closed
        assert await cookie_tab.receive_output(timeout=5) == closed

    async def test_a_ticket_whose_session_ended_gets_a_socket_closed_4401(self, logged_in, connect, users, chat_rooms):
        alice = await logged_in(users["alice"])
        grant = await sync_to_async(ticket_get)(alice)
        await alice.log_out()
        socket, connected = await connect(ticket_path(grant))
        assert connected  # accepted to be closed: a page reads the code, and stops
        assert await socket.receive_output() == {"type": "websocket.close", "code": CLOSE_LOGGED_OUT}

    async def test_a_ticket_works_once(self, logged_in, connect, users, chat_rooms):
        alice = await logged_in(users["alice"])
        path = ticket_path(await sync_to_async(ticket_get)(alice))
        assert (await connect(path))[1]
        assert not (await connect(path))[1]
        # Not even with the browser's cookie beside it: the ticket decides.
        assert not (await connect(path, headers=[alice.cookie]))[1]

    async def test_an_expired_ticket_is_refused(self, logged_in, connect, users, chat_rooms, monkeypatch):
        alice = await logged_in(users["alice"])
        path = ticket_path(await sync_to_async(ticket_get)(alice))
        later = time.time() + TICKET_SECONDS + 1
        monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: later))
        assert not (await connect(path))[1]

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda ticket: ticket[:-1] + ("A" if ticket[-1] != "A" else "B"),
            lambda ticket: ticket.rsplit(":", 1)[0],
            lambda ticket: json.dumps({"session_key": "x"}),
        ],
        ids=["signature", "unsigned", "forged"],
    )
    async def test_a_tampered_ticket_is_refused(self, logged_in, connect, users, chat_rooms, tamper):
        alice = await logged_in(users["alice"])
        ticket = (await sync_to_async(ticket_get)(alice))["ticket"]
        assert not (await connect(f"/ws/chat/?ticket={quote(tamper(ticket))}"))[1]

    async def test_a_ticket_of_another_site_is_refused(self, logged_in, connect, users, chat_rooms, settings):
        alice = await logged_in(users["alice"])
        settings.SITE_NAME = "liveblog"  # the sites of a deployment may share a SECRET_KEY
        path = ticket_path(await sync_to_async(ticket_get)(alice))
        settings.SITE_NAME = "chat"
        assert not (await connect(path))[1]

    async def test_a_ticket_socket_from_a_foreign_origin_is_refused(
        self, logged_in, connect, users, chat_rooms, hostile_origin
    ):
        alice = await logged_in(users["alice"])
        path = ticket_path(await sync_to_async(ticket_get)(alice))
        assert not (await connect(path, origin=hostile_origin))[1]
