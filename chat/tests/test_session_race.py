"""A plain HTTP request that saves the session while a socket joins a room
(rooms/session_store.py): Django's SessionMiddleware saves the copy it
loaded at the start of the request, which must not undo the join. The two run at once,
each on a connection of its own (``concurrent_writers``: their transactions really
overlap on Postgres), in the one order that loses the join without the fix: the request
loads the session, the socket joins, the request saves."""

import threading

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from realtime_common.testing.databases import WRITERS_TIMEOUT
from rooms.selectors import SESSION_ROOMS
from rooms.services import session_rooms_update
from rooms.session_store import SessionStore

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session_key(users, settings) -> str:
    """alice's session (a browser logged in), in the lobby."""
    client = Client()
    client.force_login(users["alice"])
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert session_rooms_update(session_key=session_key, join="lobby")
    return session_key


def request_during_join(*, session_key: str, view_change, settings) -> tuple:
    """A request through Django's SessionMiddleware whose view changes the session
    (``view_change(session)``) while the socket joins "random"; the results of both."""
    loaded, joined = threading.Event(), threading.Event()

    def view(request: HttpRequest) -> HttpResponse:
        view_change(request.session)  # loads the session, as the view's first read does
        loaded.set()
        assert joined.wait(timeout=WRITERS_TIMEOUT)
        return HttpResponse()  # the middleware then saves the session it loaded

    def request_run() -> int:
        request = RequestFactory().get("/", HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}={session_key}")
        return SessionMiddleware(view)(request).status_code

    def join_run() -> bool:
        assert loaded.wait(timeout=WRITERS_TIMEOUT)
        try:
            return session_rooms_update(session_key=session_key, join="random")
        finally:
            joined.set()

    return request_run, join_run


def test_a_request_saving_the_session_keeps_the_room_a_socket_joined_meanwhile(
    concurrent_writers, session_key, settings
):
    def remember_theme(session) -> None:
        session["theme"] = "dark"

    calls = request_during_join(session_key=session_key, view_change=remember_theme, settings=settings)
    assert concurrent_writers(*calls) == [200, True]
    session = SessionStore(session_key)
    assert (session[SESSION_ROOMS], session["theme"]) == (["lobby", "random"], "dark")


def test_a_request_that_changes_the_rooms_itself_keeps_its_change(concurrent_writers, session_key, settings):
    def leave_every_room(session) -> None:
        session[SESSION_ROOMS] = []

    calls = request_during_join(session_key=session_key, view_change=leave_every_room, settings=settings)
    assert concurrent_writers(*calls) == [200, True]
    assert SessionStore(session_key)[SESSION_ROOMS] == []


def test_a_request_that_changes_the_rooms_in_place_keeps_its_change(concurrent_writers, session_key, settings):
    def leave_in_place(session) -> None:
        session[SESSION_ROOMS].remove("lobby")
        session.modified = True

    calls = request_during_join(session_key=session_key, view_change=leave_in_place, settings=settings)
    assert concurrent_writers(*calls) == [200, True]
    assert SessionStore(session_key)[SESSION_ROOMS] == []


def test_a_new_key_keeps_the_rooms_and_a_logout_ends_them(session_key, settings):
    # What a password change does to the browser that made it (update_session_auth_hash),
    # and a login to the session it started in: the same data under a new key.
    session = SessionStore(session_key)
    session.cycle_key()
    assert not session.exists(session_key)
    assert SessionStore(session.session_key)[SESSION_ROOMS] == ["lobby"]

    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    assert client.post("/accounts/logout/").status_code == 302
    assert not session.exists(session.session_key)
    assert not session_rooms_update(session_key=session.session_key, join="random")
