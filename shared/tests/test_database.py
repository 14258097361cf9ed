"""An HTTP request served under ASGI closes its thread's database connections as it ends
(realtime_common.database), whatever CONN_MAX_AGE; the test client's requests do not."""

import threading

import pytest
from channels.testing import HttpCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.db import connection, connections
from django.http import HttpResponse
from django.test import Client
from django.urls import path

pytestmark = pytest.mark.django_db(transaction=True)

# The connection each request's view queried through, with the thread it ran in.
queried = []


def query_view(request):
    connection.ensure_connection()
    queried.append((threading.current_thread(), connections["default"]))
    return HttpResponse("ok")


urlpatterns = [path("query/", query_view)]


@pytest.fixture
def closed(settings, monkeypatch) -> list:
    """The connections closed from now on; connections kept a minute, as the sites' are."""
    settings.ROOT_URLCONF = __name__
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)
    queried.clear()
    closed = []
    wrapper_class = type(connections["default"])
    close = wrapper_class.close

    def close_recorded(self) -> None:
        # Recorded, then closed: an SQLite database in memory (the tests') ignores close() itself.
        closed.append(self)
        close(self)

    monkeypatch.setattr(wrapper_class, "close", close_recorded)
    return closed


async def test_a_request_under_asgi_closes_the_connection_of_its_thread(closed: list):
    communicator = HttpCommunicator(ASGIHandler(), "GET", "/query/")
    assert (await communicator.get_response())["status"] == 200
    # The request ends after its response is sent: request_finished comes as the handler returns.
    await communicator.wait()
    [(thread, wrapper)] = queried
    # The view ran in a thread of the request's own, ended with it: its connection could serve nothing more.
    assert thread is not threading.current_thread()
    assert wrapper in closed


def test_a_request_of_the_test_client_keeps_the_tests_connection(closed: list):
    # Its request runs in the test's thread, inside the test's transaction.
    assert Client().get("/query/").status_code == 200
    [(thread, wrapper)] = queried
    assert thread is threading.current_thread()
    assert wrapper not in closed
