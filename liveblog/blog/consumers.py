from channels.db import database_sync_to_async

from realtime_common.streams import StreamConsumer, stream_since_parse

from .selectors import liveblog_get, liveblog_get_by_id, post_snapshot
from .wire import frame_post_id, liveblog_gone_fragment, liveblog_stream, post_fragment, posts_fragment

# The fragments page's close when its liveblog is deleted: final (4400-4499, like HTTP's 404), so its
# extension stops and shows "Disconnected". Not 1000: the extension reconnects after that one, as a
# daphne --websocket_timeout or a proxy sends it to a page that should carry on. (The JSON page gets
# the 4000 of every deleted stream instead: it reloads its list, and finds the liveblog gone there.)
CLOSE_LIVEBLOG_GONE = 4404


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


class LiveblogFragmentsConsumer(StreamConsumer):
    """The fragments page's socket: the same stream, sent as the HTML that htmx's WebSocket
    extension swaps into the page (liveblog/README.md, "The two liveblog pages").

    Every connect starts with the list as it is now, and follows the stream from there.
    Not ``?since=``: the page's extension (htmx-socket-state.js) could add it to each
    attempt's URL, but the page would have to track the seq of every fragment it swaps
    in, and this consumer to replay or resync as the JSON one does: more code on both
    sides, to save one list render per reconnect (liveblog/README.md, "The fragments
    page's one script").
    """

    read_only_detail = "This socket only sends. Publish posts over HTTP."

    async def connect(self):
        # The posts the list sent on connect shows: their "created" events, replayed
        # right after it, replace them rather than add them twice.
        self.listed: set[int] = set()
        liveblog = await database_sync_to_async(liveblog_get)(slug=self.scope["url_route"]["kwargs"]["slug"])
        if liveblog is None:
            await self.close()  # before accept(), this refuses the handshake
            return
        self.liveblog_id = liveblog.pk  # by id from now on: its slug may change, or be taken by another
        await self.accept()
        await self.stream_resync(liveblog_stream(liveblog_id=liveblog.pk))

    async def stream_resync(self, stream: str) -> None:
        """The list as it is now, then the events after it: on connect, and when the page
        missed more than the stream keeps. The page needs no reload, unlike the JSON page."""
        self.stream_seqs[stream] = None
        snapshot = await database_sync_to_async(snapshot_rendered)(liveblog_id=self.liveblog_id)
        if snapshot is None:
            # Deleted (StreamConsumer.stream_deleted): say so, and close for good.
            await self.send(text_data=liveblog_gone_fragment())
            await self.close(code=CLOSE_LIVEBLOG_GONE)
            return
        seq, self.listed, html = snapshot
        await self.send(text_data=html)
        # The events the list may already show are all replayed here, from the
        # database, before any live one: none after this can be in the list.
        await self.stream_follow(stream=stream, since=seq)
        self.listed = set()

    async def stream_send(self, *, stream: str, seq: int, text: str) -> None:
        created_as_update = bool(self.listed) and frame_post_id(text=text) in self.listed
        await self.send(text_data=post_fragment(text=text, created_as_update=created_as_update))


def snapshot_rendered(*, liveblog_id: int) -> tuple[int, set[int], str] | None:
    """The seq, the posts' ids and the list's HTML of the liveblog; None once it is deleted. Rendered here, in the ORM's thread, with the query: a long list rendered on
    the event loop would hold every other socket of the process meanwhile."""
    liveblog = liveblog_get_by_id(liveblog_id=liveblog_id)
    if liveblog is None:
        return None
    seq, posts = post_snapshot(liveblog=liveblog)
    return seq, {post["id"] for post in posts}, posts_fragment(posts=posts)
