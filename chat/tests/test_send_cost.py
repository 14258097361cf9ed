"""What a send costs the server (issue 19): one call in the ORM's thread, and in it the
session check (unless the process's latest re-check vouches for the session), the rate, and
the message stored with its event, in as few queries as its guarantees allow. Against the
in-memory and the Redis channel layer."""

from functools import partial

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from realtime_common import broadcast, streams
from realtime_common.streams import stream_seq
from rooms import consumers, sessions
from rooms.services import message_send
from tests.helpers import join, say

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]


@pytest.fixture
def alice_send(users, chat_rooms, settings):
    """message_send in the lobby, from a session of alice's (a browser logged in)."""
    client = Client()
    client.force_login(users["alice"])
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    return partial(message_send, session_key=session_key, room=chat_rooms["lobby"], user=users["alice"])


def test_a_new_message_is_stored_without_looking_for_a_resend_first(alice_send):
    with CaptureQueriesContext(connection) as queries:
        _, created = alice_send(text="Hello", client_id="m-1")
    assert created
    # Resends are rare: the unique constraint finds them, at the INSERT, rather than a SELECT before every one.
    assert not [query for query in queries if query["sql"].startswith('SELECT "rooms_message"')]


def test_a_message_and_its_event_are_stored_in_one_transaction_without_savepoints(alice_send):
    alice_send(text="First", client_id="m-1")  # creates the room's stream, in a savepoint of its own
    with CaptureQueriesContext(connection) as queries:
        alice_send(text="Hello", client_id="m-2")
    # LiveModel.save and stream_extend join the send's transaction rather than nest one each.
    assert not [query for query in queries if "SAVEPOINT" in query["sql"]]


def test_a_message_s_seq_is_raised_and_read_in_one_statement(alice_send):
    alice_send(text="First", client_id="m-1")  # creates the room's stream
    with CaptureQueriesContext(connection) as queries:
        alice_send(text="Hello", client_id="m-2")
    # UPDATE ... RETURNING, not an UPDATE and then a SELECT of what it set.
    stream = [query["sql"].split()[0] for query in queries if '"realtime_common_stream" ' in query["sql"]]
    assert stream == ["UPDATE"]


def test_a_message_s_seq_is_raised_then_read_where_the_database_cannot_return_from_an_update(alice_send, monkeypatch):
    # SQLite before 3.35 (Django 5.2 accepts 3.31) has no UPDATE ... RETURNING: the statement would fail every send.
    # Only this question is answered no: Django's own flag also decides how its INSERTs read their new pk.
    monkeypatch.setattr(streams, "update_returning_supported", lambda *, connection: False)
    message, _ = alice_send(text="First", client_id="m-1")  # creates the room's stream
    with CaptureQueriesContext(connection) as queries:
        alice_send(text="Hello", client_id="m-2")
    stream = [query["sql"].split()[0] for query in queries if '"realtime_common_stream" ' in query["sql"]]
    assert stream == ["UPDATE", "SELECT"]
    assert stream_seq(stream=message.live_stream()) == 2


async def test_a_send_is_one_call_in_the_orm_s_thread(logged_in, users, chat_rooms, monkeypatch, settings):
    settings.CHAT_PRESENCE_HEARTBEAT = 600  # no session re-check comes between: only the send's calls counted
    tab = await (await logged_in(users["alice"])).open_tab()
    await join(tab, "lobby")
    calls = []

    def counted(function):
        calls.append(function.__name__)
        return database_sync_to_async(function)

    def hop_counted(function):
        calls.append(f"async_to_sync({function.__name__})")
        return async_to_sync(function)

    database_sync_to_async, async_to_sync = consumers.database_sync_to_async, broadcast.async_to_sync
    for module in [consumers, sessions, broadcast]:
        monkeypatch.setattr(module, "database_sync_to_async", counted)
    monkeypatch.setattr(broadcast, "async_to_sync", hop_counted)
    await say(tab, "lobby", "Hello")
    assert (await tab.receive_json_from())["text"] == "Hello"
    # The session check (no re-check yet), the rate and the INSERT: each call is a hop to that thread and back; and the
    # message to the room is sent from the event loop once the call returns, not with a hop back from it.
    assert calls == ["message_send"]
