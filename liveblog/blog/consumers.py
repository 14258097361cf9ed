from channels.db import database_sync_to_async

from realtime_common.streams import StreamConsumer, stream_since_parse

from .selectors import liveblog_get
from .wire import liveblog_stream


class LiveblogConsumer(StreamConsumer):
    """Sends one liveblog's post events to one page: in seq order, none missed, none twice."""

    read_only_detail = "This socket only sends. Publish posts over HTTP."

    async def connect(self):
        liveblog = await database_sync_to_async(liveblog_get)(slug=self.scope["url_route"]["kwargs"]["slug"])
        if liveblog is None:
            await self.close()  # before accept(), this refuses the handshake
            return
        stream = liveblog_stream(liveblog_id=liveblog.pk)
        try:
            since = stream_since_parse(query_string=self.scope["query_string"])
        except ValueError:
            await self.accept()
            await self.stream_resync(stream)
            return
        await self.stream_follow(stream=stream, since=since)
