from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from realtime_common.consumers import AsyncSafeJsonWebsocketConsumer, error_frame

from .selectors import event_frames_since, liveblog_get, liveblog_seq
from .wire import liveblog_group

# Sent after {"type": "resync"}: the page reloads its list, then reconnects.
CLOSE_RESYNC = 4000


class LiveblogConsumer(AsyncSafeJsonWebsocketConsumer):
    """Sends one liveblog's post events to one page: in seq order, none missed, none twice."""

    async def connect(self):
        liveblog = await database_sync_to_async(liveblog_get)(slug=self.scope["url_route"]["kwargs"]["slug"])
        if liveblog is None:
            await self.close()  # before accept(), this refuses the handshake
            return
        self.liveblog_id = liveblog.pk
        self.group = liveblog_group(liveblog_id=liveblog.pk)
        # Join before reading the backlog: an event committed in between then
        # arrives twice, and the seq check drops the copy, rather than not at all.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        since = parse_qs(self.scope["query_string"].decode()).get("since", [None])[-1]
        if since is None:
            self.seq = await database_sync_to_async(liveblog_seq)(liveblog_id=self.liveblog_id)
        elif since.isdigit():
            self.seq = int(since)
            await self.catch_up()
        else:
            await self.resync()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        await self.send_json(error_frame(code="read_only", detail="This socket only sends. Publish posts over HTTP."))

    async def post_event(self, message):
        seq = message["seq"]
        if self.seq is None or seq <= self.seq:
            return  # resyncing, or sent already from the backlog
        if seq > self.seq + 1:
            await self.catch_up()  # an earlier event is late or lost: the database has it
            return
        await self.send(text_data=message["text"])  # encoded once for every page, by the sender
        self.seq = seq

    async def catch_up(self):
        frames = await database_sync_to_async(event_frames_since)(liveblog_id=self.liveblog_id, seq=self.seq)
        if frames is None:
            await self.resync()
            return
        for frame in frames:
            await self.send_json(frame)
            self.seq = frame["seq"]

    async def resync(self):
        self.seq = None
        await self.send_json({"type": "resync"})
        await self.close(code=CLOSE_RESYNC)
