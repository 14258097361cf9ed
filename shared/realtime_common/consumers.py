"""JSON WebSocket consumers that answer bad input with an error frame instead of
crashing, and relay group frames without per-recipient work.

Channels' JSON consumers raise on a frame that is not JSON, or binary: the
connection dies and the client learns nothing. These send
``{"type": "error", "code": ..., "detail": ...}`` and keep the connection open;
``receive_json`` only ever sees a JSON object.

**Relayed frames.** A group message made by ``relay_message`` carries its frame
already encoded. Every consumer in the group sends that text to its page from
the event loop: the frame is encoded once for the whole group, not once per
recipient, and no handler, thread hop or database work runs per recipient.
"""

import json

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer

RELAY = "frame.relay"


def error_frame(*, code: str, detail: str) -> dict:
    return {"type": "error", "code": code, "detail": detail}


def frame_encode(*, frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))


def relay_message(*, frame: dict, skip: str | None = None) -> dict:
    """A group message that every consumer of the group, except the channel ``skip``, sends to its page as is."""
    return {"type": RELAY, "text": frame_encode(frame=frame), "skip": skip}


async def relay_send(*, message: dict, channel_name: str, send) -> None:
    if message["skip"] != channel_name:
        await send({"type": "websocket.send", "text": message["text"]})


def parse_frame(text_data: str | None, bytes_data: bytes | None) -> tuple[dict | None, dict | None]:
    """(content, None) for a JSON object, else (None, error frame)."""
    if text_data is None:
        return None, error_frame(code="binary_frame", detail="Send JSON in text frames, not binary ones.")
    try:
        content = json.loads(text_data)
    except ValueError:
        return None, error_frame(code="bad_json", detail="The frame is not valid JSON.")
    if not isinstance(content, dict):
        return None, error_frame(code="bad_frame", detail="The frame must be a JSON object.")
    return content, None


class SafeJsonWebsocketConsumer(JsonWebsocketConsumer):
    """The sync consumer: handlers run in the one thread Django's ORM uses (one
    at a time for all sync consumers of a process), except relayed frames,
    which go out from the event loop and never queue behind that thread."""

    async def __call__(self, scope, receive, send):
        # Channels keeps only a sync wrapper of ``send`` (base_send) for sync consumers.
        self.async_send = send
        await super().__call__(scope, receive, send)

    async def dispatch(self, message):
        if message["type"] == RELAY:
            await relay_send(message=message, channel_name=self.channel_name, send=self.async_send)
            return
        await super().dispatch(message)

    def receive(self, text_data=None, bytes_data=None, **kwargs):
        content, error = parse_frame(text_data, bytes_data)
        if error:
            self.send_json(error)
        else:
            self.receive_json(content, **kwargs)

    @classmethod
    def encode_json(cls, content):
        return frame_encode(frame=content)


class AsyncSafeJsonWebsocketConsumer(AsyncJsonWebsocketConsumer):
    """The async consumer. Reach the database only through
    ``channels.db.database_sync_to_async``, which closes stale connections
    around each call, as Django does around each request."""

    async def dispatch(self, message):
        # Channels' own dispatch runs close_old_connections() in the ORM's
        # thread before every handler: one thread hop per message, queued
        # behind every other consumer of the process, even for group messages
        # that never touch the database. database_sync_to_async does that
        # cleanup where the database is actually used.
        if message["type"] == RELAY:
            await relay_send(message=message, channel_name=self.channel_name, send=self.base_send)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        content, error = parse_frame(text_data, bytes_data)
        if error:
            await self.send_json(error)
        else:
            await self.receive_json(content, **kwargs)

    @classmethod
    async def encode_json(cls, content):
        return frame_encode(frame=content)
