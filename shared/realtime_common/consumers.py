"""JSON WebSocket consumers that answer bad input with an error frame instead of crashing.

Channels' JSON consumers raise on a frame that is not JSON, or binary: the
connection dies and the client learns nothing. These send
``{"type": "error", "code": ..., "detail": ...}`` and keep the connection open;
``receive_json`` only ever sees a JSON object.
"""

import json

from channels.generic.websocket import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer


def error_frame(*, code: str, detail: str) -> dict:
    return {"type": "error", "code": code, "detail": detail}


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
    def receive(self, text_data=None, bytes_data=None, **kwargs):
        content, error = parse_frame(text_data, bytes_data)
        if error:
            self.send_json(error)
        else:
            self.receive_json(content, **kwargs)


class AsyncSafeJsonWebsocketConsumer(AsyncJsonWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        content, error = parse_frame(text_data, bytes_data)
        if error:
            await self.send_json(error)
        else:
            await self.receive_json(content, **kwargs)
