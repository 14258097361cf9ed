"""The consumer the conformance suite talks to."""

from realtime_common.consumers import AsyncSafeJsonWebsocketConsumer


class EchoConsumer(AsyncSafeJsonWebsocketConsumer):
    """The sites' async consumer base (its dispatch, accept and close), echoing
    every message as it came: text as text, bytes as bytes, nothing parsed."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)


class SizedConsumer(AsyncSafeJsonWebsocketConsumer):
    """Answers a text message ``n`` with a binary message of n octets: a frame the
    server sends may be bigger than any a page may send."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        await self.send(bytes_data=b"x" * int(text_data))
