"""Tickets (realtime_common.tickets): signed per site, at most TICKET_SECONDS old, redeemed
once (of two racing redemptions exactly one wins, on the in-process and the Redis cache),
and redeemed for the very session they were issued from."""

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
import redis
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import signing
from django.core.cache import cache
from django.core.cache.backends import locmem
from django.db import connection
from django.test import Client, RequestFactory

from realtime_common import tickets
from realtime_common.asgi import SocketLogin
from realtime_common.cache import caches
from realtime_common.tickets import TICKET_SECONDS, ticket_grant, ticket_issue, ticket_redeem

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis"])
def ticket_cache(request, settings):
    """Each test once on process memory and once on Redis, as a site with REDIS_URL has it."""
    urls = [request.getfixturevalue("redis_server")] if request.param == "redis" else []
    settings.CACHES = caches(prefix="shared-test", redis_urls=urls)
    cache.clear()


@pytest.fixture
def logged_in(django_user_model) -> Client:
    """A browser logged in as alice: its session is the one its tickets lead to."""
    client = Client()
    client.force_login(django_user_model.objects.create_user("alice"))
    return client


def test_a_ticket_leads_once_to_the_session_it_was_issued_from(ticket_cache, logged_in):
    ticket = ticket_issue(session=logged_in.session)
    session = ticket_redeem(ticket=ticket)
    assert session.session_key == logged_in.session.session_key
    assert session[SESSION_KEY] == logged_in.session[SESSION_KEY]
    assert ticket_redeem(ticket=ticket) is None


def test_the_ticket_holds_a_random_id_and_not_the_session_key(logged_in):
    first, second = (ticket_issue(session=logged_in.session) for _ in range(2))
    assert first != second
    # Signed, not encrypted: anyone can read the payload.
    payload = base64.urlsafe_b64decode(first.split(":")[0] + "==").decode()
    assert logged_in.session.session_key not in first and logged_in.session.session_key not in payload
    assert signing.loads(first, salt=tickets.ticket_salt()) in payload


def test_a_ticket_older_than_its_lifetime_is_refused_whatever_the_cache_keeps(logged_in, monkeypatch):
    ticket = ticket_issue(session=logged_in.session)
    # Only the signature's clock moves on: the cache entry is still there.
    later = time.time() + TICKET_SECONDS + 1
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: later))
    assert ticket_redeem(ticket=ticket) is None


def test_the_cache_forgets_a_ticket_after_its_lifetime_whatever_the_signature_says(logged_in, monkeypatch):
    ticket = ticket_issue(session=logged_in.session)
    # Only the (in-process) cache's clock moves on: the signature is still fresh.
    later = time.time() + TICKET_SECONDS + 1
    monkeypatch.setattr(locmem, "time", SimpleNamespace(time=lambda: later))
    assert ticket_redeem(ticket=ticket) is None


def test_redis_keeps_a_ticket_for_its_lifetime_only(logged_in, settings, redis_server):
    settings.CACHES = caches(prefix="shared-test", redis_urls=[redis_server])
    ticket = ticket_issue(session=logged_in.session)
    key = tickets.ticket_cache_key(ticket_id=signing.loads(ticket, salt=tickets.ticket_salt()))
    assert 0 < redis.Redis.from_url(redis_server).ttl(cache.make_key(key)) <= TICKET_SECONDS


@pytest.mark.parametrize(
    "tamper",
    [
        lambda ticket: ticket[:-1] + ("A" if ticket[-1] != "A" else "B"),  # the signature
        lambda ticket: ("x" if ticket[0] != "x" else "y") + ticket[1:],  # the payload
        lambda ticket: ticket.rsplit(":", 1)[0],  # no signature
        lambda ticket: ticket + "x",
        lambda ticket: "",
        lambda ticket: "not-a-ticket",
        lambda ticket: signing.dumps(signing.loads(ticket, salt=tickets.ticket_salt())),  # signed without the salt
    ],
    ids=["signature", "payload", "unsigned", "appended", "empty", "garbage", "unsalted"],
)
def test_a_tampered_ticket_is_refused_and_spends_nothing(logged_in, tamper):
    ticket = ticket_issue(session=logged_in.session)
    assert ticket_redeem(ticket=tamper(ticket)) is None
    assert ticket_redeem(ticket=ticket).session_key == logged_in.session.session_key


def test_a_ticket_of_another_site_is_refused_even_with_the_same_secret_key(logged_in, settings):
    settings.SITE_NAME = "liveblog"
    ticket = ticket_issue(session=logged_in.session)
    settings.SITE_NAME = "chat"
    assert ticket_redeem(ticket=ticket) is None


def test_of_two_handshakes_racing_with_one_ticket_exactly_one_gets_in(ticket_cache, logged_in, monkeypatch):
    ticket = ticket_issue(session=logged_in.session)

    class BothRead:
        """The cache, but each redemption reads the entry before either deletes it."""

        def __init__(self):
            self.read = threading.Barrier(2, timeout=5)

        def get(self, key):
            value = cache.get(key)
            self.read.wait()
            return value

        def delete(self, key):
            return cache.delete(key)

    monkeypatch.setattr(tickets, "cache", BothRead())

    def redeem():
        try:
            return ticket_redeem(ticket=ticket)
        finally:
            connection.close()  # this thread's

    with ThreadPoolExecutor(max_workers=2) as pool:
        sessions = list(pool.map(lambda _: redeem(), range(2)))
    assert sorted(session is None for session in sessions) == [False, True]


def test_a_session_that_ended_since_the_ticket_gives_no_login(logged_in):
    ticket = ticket_issue(session=logged_in.session)
    logged_in.logout()
    session = ticket_redeem(ticket=ticket)
    assert session is not None and SESSION_KEY not in session


@pytest.mark.parametrize(
    ("socket_origin", "secure", "url"),
    [
        ("", False, "ws://chat.example:8002/ws/x/"),
        ("", True, "wss://chat.example:8002/ws/x/"),
        ("wss://ws.example.com", True, "wss://ws.example.com/ws/x/"),
    ],
)
def test_a_grant_leads_to_the_socket_origin_or_else_the_page_s_own_host(
    logged_in, settings, socket_origin, secure, url
):
    settings.SOCKET_ORIGIN = socket_origin
    settings.ALLOWED_HOSTS = ["chat.example"]
    request = RequestFactory().post("/ws-ticket/", secure=secure, headers={"host": "chat.example:8002"})
    request.session = logged_in.session
    grant = ticket_grant(request=request, path="/ws/x/")
    base, _, query = grant["url"].partition("?")
    assert (base, parse_qs(query)) == (url, {"ticket": [grant["ticket"]]})
    assert grant["expires_in"] == TICKET_SECONDS <= 30


class Seen:
    """The innermost application: accepts, and keeps the scope it was given."""

    def __init__(self):
        self.scopes = []

    async def __call__(self, scope, receive, send):
        await receive()
        self.scopes.append(scope)
        await send({"type": "websocket.accept"})


async def handshake(*, query: str = "", cookie: str | None = None):
    seen = Seen()
    stack = SocketLogin(seen)
    headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())] if cookie else []
    communicator = WebsocketCommunicator(stack, f"/ws/x/{query}", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected, seen.scopes[0] if seen.scopes else None


@pytest.fixture
def alice(logged_in) -> tuple[str, str]:
    """alice's session key, and a ticket to that session."""
    return logged_in.session.session_key, ticket_issue(session=logged_in.session)


async def test_a_ticket_handshake_gets_the_session_and_user_a_cookie_handshake_gets(alice):
    key, ticket = alice
    by_cookie = (await handshake(cookie=key))[1]
    connected, by_ticket = await handshake(query=f"?ticket={ticket}&since=4")
    assert connected
    assert by_ticket["session"].session_key == by_cookie["session"].session_key == key
    assert by_ticket["user"] == by_cookie["user"] and by_ticket["user"].username == "alice"


async def test_a_handshake_with_a_bad_ticket_is_refused_even_with_a_good_cookie(alice):
    key, ticket = alice
    assert (await handshake(query=f"?ticket={ticket}"))[0]
    # The ticket decides: spent now, and a cookie beside it does not help.
    assert await handshake(query=f"?ticket={ticket}", cookie=key) == (False, None)
    assert await handshake(query="?ticket=", cookie=key) == (False, None)


async def test_a_handshake_whose_ticket_cannot_be_redeemed_while_redis_is_away_is_refused(alice, monkeypatch, caplog):
    _, ticket = alice

    def redis_away(*, ticket):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(tickets, "ticket_redeem", redis_away)
    # Refused as a bad ticket (403), logged without a traceback: the page asks for a new one.
    assert await handshake(query=f"?ticket={ticket}") == (False, None)
    assert "socket ticket not redeemed: ConnectionError: Connection refused" in caplog.text


async def test_a_handshake_without_a_session_is_anonymous_without_a_trip_to_the_orm_thread(monkeypatch):
    async def get_user(scope):
        raise AssertionError("a handshake without a session cookie or ticket went to the ORM's thread")

    monkeypatch.setattr("realtime_common.asgi.get_user", get_user)
    connected, scope = await handshake()
    assert connected
    assert scope["user"].is_anonymous and scope["session"].session_key is None


async def test_a_handshake_with_a_session_cookie_of_no_stored_session_is_anonymous():
    connected, scope = await handshake(cookie="no-such-session-key-0123456789abcdef")
    assert connected
    assert scope["user"].is_anonymous
