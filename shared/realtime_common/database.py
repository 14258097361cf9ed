"""The database connections of HTTP requests served under ASGI (daphne).

Django serves each request's sync code (middleware, a sync view) in a thread made for that request
and ended with it (ThreadSensitiveContext, in Django's ASGIHandler), and a connection belongs to its
thread. At the end of the request Django's close_old_connections keeps that connection for
CONN_MAX_AGE seconds, for a next request of the same thread, which never comes: every request then
connected anew, and the connection it left stayed open and idle until Python's garbage collector
found it (measured with a live site on Postgres: one new backend per request, up to 17 idle ones for
one process answering one request at a time). Django's docs: "When using ASGI, persistent connections
should be disabled." So the request's own thread closes its connections as the request ends.

CONN_MAX_AGE still pays where a thread lives on: the one thread in which every
database_sync_to_async call of the consumers runs (realtime_common.settings.database).
"""

from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished
from django.db import connections


def request_connections_close(**kwargs) -> None:
    """Close the connections of the thread the request ran in (request_finished is sent from it)."""
    connections.close_all()


def receivers_connect() -> None:
    # Only requests served by Django's ASGI handler, each in a thread of its own: not the test
    # client's (its requests run in the test's thread, inside the test's transaction), nor WSGI's.
    request_finished.connect(request_connections_close, sender=ASGIHandler, dispatch_uid="realtime_common.database")
