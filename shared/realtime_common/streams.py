"""Make a model live: every change stored as a numbered event of a stream, in the
transaction of the change, broadcast once committed, and replayed to a page
that reconnects with the seq of the last event it applied.

The three steps (README, "Make your own model live in three steps"):

1. The model inherits ``LiveModel`` and says which stream a row belongs to
   (``live_stream``) and what a page receives when it changes (``live_frame``).
2. A consumer inherits ``StreamConsumer`` and calls ``stream_follow`` for the
   stream its page shows.
3. The page opens its socket with ``?since=<seq of the last frame it applied>``,
   and on ``{"type": "resync"}`` reloads what it shows and reconnects.
"""

import re
from collections.abc import Callable
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.db import IntegrityError, models, router, transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save

from .broadcast import group_send_on_commit
from .consumers import AsyncSafeJsonWebsocketConsumer, frame_encode
from .models import Stream, StreamEvent

# Sent after {"type": "resync"}: the page reloads what it shows, then reconnects.
CLOSE_RESYNC = 4000
# A seq fits a PositiveBigIntegerField; longer digit strings are refused before int() sees them.
SINCE = re.compile(r"[0-9]{1,18}")


class LiveModel(models.Model):
    """A model whose every save and delete becomes an event of its row's stream.

    QuerySet.update() and bulk_create() send no signals, so they make no events:
    write through save() and delete(), as the admin and forms do.
    """

    # Events kept per stream for catching up; a page that missed more resyncs.
    live_retention = 500

    class Meta:
        abstract = True

    def live_stream(self) -> str:
        """The stream (also the channel layer group) this row's changes go to: ASCII letters, digits, -, _ and ."""
        raise NotImplementedError

    def live_frame(self, *, event: str, seq: int) -> dict:
        """What pages receive when the row is ``created``, ``updated`` or ``deleted``; it must carry ``seq``."""
        raise NotImplementedError

    def save(self, *args, **kwargs):
        # Django commits a save in autocommit mode (a shell, a script, a view
        # without ATOMIC_REQUESTS) before post_save runs; this keeps the row
        # and its event in one transaction, whoever saves.
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)


@transaction.atomic
def stream_append(*, stream: str, frame_for: Callable[[int], dict], retention: int) -> dict:
    """Store the next event of the stream, in the current transaction, and broadcast it after commit.

    Raising last_seq with an UPDATE locks the stream's row until commit, so
    concurrent writers get their seqs in the order they commit (on Postgres as on
    SQLite): no reader sees event n+1 before event n, which a page catching up by
    seq would skip for good. A rolled-back change takes its event and its broadcast with it.
    """
    if not Stream.objects.filter(name=stream).update(last_seq=F("last_seq") + 1):
        try:
            with transaction.atomic():
                Stream.objects.create(name=stream, last_seq=1)
        except IntegrityError:  # another writer created it first
            Stream.objects.filter(name=stream).update(last_seq=F("last_seq") + 1)
    stream_id, seq = Stream.objects.values_list("pk", "last_seq").get(name=stream)
    frame = frame_for(seq)
    if frame.get("seq") != seq:
        raise ValueError(f"the frame of event {seq} of {stream!r} must carry its seq")
    StreamEvent.objects.create(stream_id=stream_id, seq=seq, frame=frame)
    StreamEvent.objects.filter(stream_id=stream_id, seq__lte=seq - retention).delete()
    message = {"type": "stream.event", "stream": stream, "seq": seq, "text": frame_encode(frame=frame)}
    group_send_on_commit(group=stream, message=message)
    return frame


def stream_delete(*, stream: str) -> None:
    """Forget the stream and its events, e.g. with the row whose changes it carried."""
    Stream.objects.filter(name=stream).delete()


def stream_seq(*, stream: str) -> int:
    """The seq of the stream's newest event; 0 before its first."""
    return Stream.objects.filter(name=stream).values_list("last_seq", flat=True).first() or 0


def stream_frames_since(*, stream: str, seq: int) -> list[dict] | None:
    """Every event after ``seq``, in order, or None when they cannot all be
    replayed: older ones were pruned, or ``seq`` is ahead of the stream's (from
    another database, or from before the stream was reset)."""
    last_seq = stream_seq(stream=stream)
    if seq > last_seq:
        return None
    frames = list(
        StreamEvent.objects.filter(stream__name=stream, seq__gt=seq).order_by("seq").values_list("frame", flat=True)
    )
    if seq < last_seq and (not frames or frames[0]["seq"] != seq + 1):
        return None
    return frames


def stream_since_parse(*, query_string: bytes) -> int | None:
    """``?since=<seq>`` → the seq; None without ``since``; ValueError when it is not a seq."""
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("since")
    if values is None:
        return None
    if not SINCE.fullmatch(values[-1]):
        raise ValueError("since is not a seq")
    return int(values[-1])


class StreamConsumer(AsyncSafeJsonWebsocketConsumer):
    """Sends the events of the streams it follows: in seq order, none missed, none twice.

    Per stream it keeps the seq of the last event its page has. A group message
    at or below it is dropped (sent already from the backlog); one past a gap
    means an event is late or lost, and the backlog in the database fills the gap.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # By stream followed: the seq of the last event the page has; None once it must resync.
        self.stream_seqs: dict[str, int | None] = {}
        self.accepted = False

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def stream_follow(self, *, stream: str, since: int | None) -> None:
        """Follow from ``since`` (events after it are sent first), or, without, from now.

        Called from connect() before accept(), it accepts the handshake once the
        socket is in the stream's group, so the page gets every event committed
        after its handshake.
        """
        # Join before reading the backlog: an event committed in between then
        # arrives twice, and the seq check drops the copy, rather than not at all.
        await self.channel_layer.group_add(stream, self.channel_name)
        if not self.accepted:
            await self.accept()
        if since is None:
            self.stream_seqs[stream] = await database_sync_to_async(stream_seq)(stream=stream)
        else:
            self.stream_seqs[stream] = since
            await self.stream_catch_up(stream)

    async def disconnect(self, code):
        for stream in self.stream_seqs:
            await self.channel_layer.group_discard(stream, self.channel_name)

    async def stream_event(self, message):
        stream, seq = message["stream"], message["seq"]
        last = self.stream_seqs.get(stream)
        if last is None or seq <= last:
            return  # not following (any more), or sent already
        if seq > last + 1:
            await self.stream_catch_up(stream)
            return
        await self.send(text_data=message["text"])  # encoded once for every page, by the writer
        self.stream_seqs[stream] = seq

    async def layer_reconnected(self, message):
        # Redis was away: the group messages of that time never came. The stored events have them.
        for stream in list(self.stream_seqs):
            if self.stream_seqs.get(stream) is not None:  # still followed, and not resyncing
                await self.stream_catch_up(stream)

    async def stream_catch_up(self, stream: str) -> None:
        frames = await database_sync_to_async(stream_frames_since)(stream=stream, seq=self.stream_seqs[stream])
        if frames is None:
            await self.stream_resync(stream)
            return
        for frame in frames:
            await self.send_json(frame)
            self.stream_seqs[stream] = frame["seq"]

    async def stream_resync(self, stream: str) -> None:
        """The page missed more than the stream keeps: tell it, and close; it reloads and reconnects."""
        self.stream_seqs[stream] = None
        await self.send_json({"type": "resync"})
        await self.close(code=CLOSE_RESYNC)


def live_saved(sender, instance, created: bool, raw: bool, **kwargs) -> None:
    if raw or not isinstance(instance, LiveModel):  # raw: loaddata; fixtures are not news
        return
    event = "created" if created else "updated"
    stream_append(
        stream=instance.live_stream(),
        frame_for=lambda seq: instance.live_frame(event=event, seq=seq),
        retention=instance.live_retention,
    )


def live_deleted(sender, instance, origin=None, **kwargs) -> None:
    if not isinstance(instance, LiveModel):
        return
    # Deleted with a parent (a cascade): the pages following it belong to the parent, which is gone.
    origin_model = origin.model if isinstance(origin, models.QuerySet) else type(origin)
    if origin is not None and not issubclass(sender, origin_model):
        return
    stream_append(
        stream=instance.live_stream(),
        frame_for=lambda seq: instance.live_frame(event="deleted", seq=seq),
        retention=instance.live_retention,
    )


def receivers_connect() -> None:
    post_save.connect(live_saved, dispatch_uid="realtime_common.live_saved")
    post_delete.connect(live_deleted, dispatch_uid="realtime_common.live_deleted")
