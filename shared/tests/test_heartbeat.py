"""The heartbeat: every socket answers a page's ``{"type": "ping"}`` with ``{"type": "pong"}``
in the consumer base, before ``receive_json`` and the read_only check, without the database,
so that a page notices a dead connection (frontend/js/socket.js) with no code in any site."""

import threading

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db.backends.utils import CursorWrapper

from realtime_common.consumers import AsyncSafeJsonWebsocketConsumer, SafeJsonWebsocketConsumer

# Sync handlers run through database_sync_to_async, which tidies the database connection.
pytestmark = pytest.mark.django_db

PONG = '{"type":"pong"}'


class SyncBoard(SafeJsonWebsocketConsumer):
    """As the sketchpad's board: sync, and every frame it handles reads the database."""

    def connect(self):
        self.accept()

    def receive_json(self, content, **kwargs):
        self.send_json({"users": User.objects.count()})


class AsyncRoom(AsyncSafeJsonWebsocketConsumer):
    """As the chat's: async, and every frame it handles reads the database."""

    async def connect(self):
        await self.accept()

    async def receive_json(self, content, **kwargs):
        await self.send_json({"users": await database_sync_to_async(User.objects.count)()})


class AsyncReadOnly(AsyncSafeJsonWebsocketConsumer):
    """As the liveblog's: async, and its socket only sends."""

    read_only_detail = "Only sends."

    async def connect(self):
        await self.accept()


@pytest.fixture
def queries(monkeypatch) -> list[str]:
    """Every SQL statement run meanwhile, in any thread (each thread has its own connection,
    which django_assert_num_queries, watching the test's, would not see)."""
    seen = []
    execute = CursorWrapper.execute

    def counted(self, sql, params=None):
        seen.append(sql)
        return execute(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", counted)
    return seen


async def socket_open(consumer) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(consumer.as_asgi(), "/")
    connected, _ = await socket.connect()
    assert connected
    return socket


@pytest.mark.parametrize("consumer", [SyncBoard, AsyncRoom])
async def test_a_ping_gets_a_pong_without_receive_json_or_the_database(consumer, queries):
    socket = await socket_open(consumer)
    for ping in ('{"type":"ping"}', '{"type": "ping"}'):  # JSON.stringify's, and Python's json.dumps'
        await socket.send_to(text_data=ping)
        assert await socket.receive_from() == PONG
    assert queries == []
    # Any other frame reaches receive_json, whose query the count would have seen.
    await socket.send_json_to({"type": "hello"})
    assert await socket.receive_json_from() == {"users": 0}
    assert queries
    await socket.disconnect()


async def test_a_socket_that_only_sends_answers_a_ping_and_refuses_the_rest(queries):
    socket = await socket_open(AsyncReadOnly)
    await socket.send_to(text_data='{"type":"ping"}')
    assert await socket.receive_from() == PONG
    await socket.send_json_to({"type": "ping", "n": 1})  # not the heartbeat: any other frame
    assert await socket.receive_json_from() == {"type": "error", "code": "read_only", "detail": "Only sends."}
    assert queries == []
    await socket.disconnect()


class SyncStalled(SafeJsonWebsocketConsumer):
    """A sync consumer whose frame holds the ORM's thread until the test lets it go (a locked database)."""

    release = threading.Event()

    def connect(self):
        self.accept()

    def receive_json(self, content, **kwargs):
        self.release.wait(timeout=30)
        self.send_json({"done": True})


async def test_the_sync_base_answers_a_ping_while_another_socket_holds_the_orm_thread():
    stalled, idle = await socket_open(SyncStalled), await socket_open(SyncStalled)
    try:
        await stalled.send_json_to({"type": "hello"})  # now holding the thread every sync consumer shares
        await idle.send_to(text_data='{"type":"ping"}')
        assert await idle.receive_from() == PONG
    finally:
        SyncStalled.release.set()  # from this thread: the ORM's is the one stalled
    assert await stalled.receive_json_from() == {"done": True}
