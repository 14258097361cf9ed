"""Step 2: the consumer that follows a board's notes."""

from realtime_common.streams import StreamConsumer, stream_since_parse


class NoteConsumer(StreamConsumer):
    async def connect(self):
        since = stream_since_parse(query_string=self.scope["query_string"])
        await self.stream_follow(stream=f"notes-{self.scope['url_route']['kwargs']['board']}", since=since)


class CardConsumer(StreamConsumer):
    async def connect(self):
        since = stream_since_parse(query_string=self.scope["query_string"])
        await self.stream_follow(stream=f"cards-{self.scope['url_route']['kwargs']['board']}", since=since)
