"""The consumer bases' per-message path: relayed frames and group messages go
out from the event loop, without waiting for the one thread that the ORM and
every sync consumer of the process share, and a relayed frame reaches every
page but the sender's."""

import asyncio
import contextlib
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from realtime_common.consumers import AsyncSafeJsonWebsocketConsumer, SafeJsonWebsocketConsumer, relay_message
from realtime_common.layers import channel_layers

# Sync handlers run through database_sync_to_async, which tidies the database connection.
pytestmark = pytest.mark.django_db

GROUP = "board"
FRAME = {"type": "draw", "points": [[0.5, 0.25]]}


@contextlib.asynccontextmanager
async def orm_thread_busy():
    """Occupy the thread that sync consumers and the ORM share, as a slow query would."""
    release = threading.Event()
    blocker = asyncio.ensure_future(sync_to_async(release.wait)())
    try:
        yield
    finally:
        release.set()
        await blocker


class SyncBoard(SafeJsonWebsocketConsumer):
    groups = [GROUP]

    def connect(self):
        self.accept()
        self.send_json({"channel": self.channel_name})

    def board_note(self, message):
        self.send_json({"note": message["n"]})


class AsyncBoard(AsyncSafeJsonWebsocketConsumer):
    groups = [GROUP]

    async def connect(self):
        await self.accept()
        await self.send_json({"channel": self.channel_name})

    async def board_note(self, message):
        await self.send_json({"note": message["n"]})


async def open_socket(consumer) -> tuple[WebsocketCommunicator, str]:
    communicator = WebsocketCommunicator(consumer.as_asgi(), "/")
    connected, _ = await communicator.connect()
    assert connected
    return communicator, (await communicator.receive_json_from())["channel"]


@pytest.mark.parametrize("consumer", [SyncBoard, AsyncBoard])
async def test_a_relayed_frame_reaches_every_page_but_the_senders_while_the_orm_thread_is_busy(consumer, layer):
    sender, sender_channel = await open_socket(consumer)
    watcher, _ = await open_socket(consumer)
    async with orm_thread_busy():
        await layer.group_send(GROUP, relay_message(frame=FRAME, skip=sender_channel))
        assert await watcher.receive_json_from(timeout=2) == FRAME
        assert await sender.receive_nothing(timeout=0.2)
    await sender.disconnect()
    await watcher.disconnect()


async def test_group_messages_reach_async_handlers_while_the_orm_thread_is_busy(layer):
    # Channels' own dispatch would first wait for the busy thread (close_old_connections).
    socket, _ = await open_socket(AsyncBoard)
    async with orm_thread_busy():
        await layer.group_send(GROUP, {"type": "board.note", "n": 1})
        assert await socket.receive_json_from(timeout=2) == {"note": 1}
    await socket.disconnect()


async def test_other_group_messages_of_sync_consumers_still_run_in_the_orm_thread(layer):
    socket, _ = await open_socket(SyncBoard)
    async with orm_thread_busy():
        await layer.group_send(GROUP, {"type": "board.note", "n": 2})
        assert await socket.receive_nothing(timeout=0.3)
    assert await socket.receive_json_from(timeout=2) == {"note": 2}
    await socket.disconnect()


def test_a_relayed_frame_is_encoded_once_compactly():
    assert relay_message(frame=FRAME, skip="x") == {
        "type": "frame.relay",
        "text": '{"type":"draw","points":[[0.5,0.25]]}',
        "skip": "x",
    }


async def test_thousands_of_group_changes_at_once_wait_for_a_connection_on_the_core_layer(
    redis_server, settings, monkeypatch
):
    from realtime_common import layers

    monkeypatch.setattr(layers, "POOL_SIZE", 5)
    settings.CHANNEL_LAYERS = channel_layers(prefix="pool-test", redis_urls=[redis_server], kind="core")
    layer = get_channel_layer()
    channels = [f"{await layer.new_channel()}" for _ in range(300)]
    await asyncio.gather(*(layer.group_add("crowd", channel) for channel in channels))
    await layer.group_send("crowd", {"type": "hello"})
    assert await layer.receive(channels[-1]) == {"type": "hello"}
    await asyncio.gather(*(layer.group_discard("crowd", channel) for channel in channels))
    await layer.flush()
