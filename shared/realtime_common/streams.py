"""Make a model live: every change stored as a numbered event of a stream, in the
transaction of the change, broadcast once committed, and replayed to a page
that reconnects with the seq of the last event it applied.

The three steps (docs/streams.md, "Make your own model live in three steps"):

1. The model inherits ``LiveModel`` and says which stream a row belongs to
   (``live_stream``) and what a page receives when it changes (``live_frame``).
2. A consumer inherits ``StreamConsumer`` and calls ``stream_follow`` for the
   stream its page shows.
3. The page opens its socket with ``?since=<seq of the last frame it applied>``,
   and on ``{"type": "resync"}`` reloads what it shows and reconnects.
"""

import re
import weakref
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.apps import apps
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import F, prefetch_related_objects
from django.db.models.signals import post_delete, post_save, pre_delete

from .broadcast import group_send_on_commit
from .consumers import AsyncSafeJsonWebsocketConsumer, frame_encode
from .models import Stream, StreamEvent

# Sent after {"type": "resync"}: the page reloads what it shows, then reconnects.
CLOSE_RESYNC = 4000
# A seq fits a PositiveBigIntegerField; longer digit strings are refused before int() sees them.
SINCE = re.compile(r"[0-9]{1,18}")
# The fields stream_events_insert stores: every field of StreamEvent but its id.
STREAM_EVENT_FIELDS = ("stream", "seq", "frame", "row")
# Rows whose events one query looks up when a deletion scrubs them: below the 999
# parameters a query that SQLite allowed before 3.32.
ROWS_PER_QUERY = 500


class LiveModel(models.Model):
    """A model whose every save and delete becomes an event of its row's stream.

    A deleted row, however deleted (delete(), a QuerySet's, the admin's, a cascade
    from any parent), leaves nothing it said in any stream: see ``live_rows_deleted``.

    QuerySet.update() and bulk_create() send no signals, so they make no events:
    write through save() and delete(), as the admin and forms do.
    """

    # Events kept per stream for catching up (at least; pruned a tenth at a time); a page that missed more resyncs.
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
        # and its event in one transaction, whoever saves. In a caller's
        # transaction, no savepoint (two more queries): a failed save spoils the
        # caller's transaction, as Django's own save() does.
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)


def stream_append(*, stream: str, frame_for: Callable[[int], dict], retention: int, row: str = "") -> dict:
    """Store the next event of the stream, in the current transaction, and broadcast it after commit.

    ``row`` names the row the event is about (``live_row_key``): deleting it scrubs the event.
    """
    return stream_extend(stream=stream, events=[(row, frame_for)], retention=retention)[0]


# No savepoint in a caller's transaction (two more queries per event stored): a failure
# spoils it, as a failed save() does; every caller lets it raise (live_saved, live_rows_deleted).
@transaction.atomic(savepoint=False)
def stream_extend(
    *, stream: str, events: Sequence[tuple[str, Callable[[int], dict]]], retention: int, create: bool = True
) -> list[dict] | None:
    """Store the next events of the stream, numbered in the order given, in the current
    transaction, and broadcast them after commit; each is (the row it is about, its
    frame for a seq). None, and nothing stored, when the stream does not exist and
    ``create`` is False (it went with the row that owned it).

    Raising last_seq with an UPDATE locks the stream's row until commit, so
    concurrent writers get their seqs in the order they commit (on Postgres as on
    SQLite): no reader sees event n+1 before event n, which a page catching up by
    seq would skip for good. A rolled-back change takes its events and broadcasts with it.

    Of more events than ``retention``, only the newest are stored and sent: pruning
    would delete the others at once, and a page missing them resyncs, as after any
    gap it cannot fill. The events are one INSERT (on SQLite one per 249, its limit
    of 999 parameters a query: ``stream_events_insert``) and one on-commit hook, however many rows.
    """
    count = len(events)
    if (raised := stream_seq_raise(stream=stream, count=count)) is None:
        if not create:
            return None
        try:
            with transaction.atomic():
                raised = Stream.objects.create(name=stream, last_seq=count).pk, count
        except IntegrityError:  # another writer created it first
            raised = stream_seq_raise(stream=stream, count=count)
    stream_id, last_seq = raised
    kept = events[max(count - retention, 0) :]
    frames, stored, messages = [], [], []
    for seq, (row, frame_for) in enumerate(kept, start=last_seq - len(kept) + 1):
        frame = frame_for(seq)
        if frame.get("seq") != seq:
            raise ValueError(f"the frame of event {seq} of {stream!r} must carry its seq")
        stored.append((seq, frame, row))
        message = {"type": "stream.event", "stream": stream, "seq": seq, "text": frame_encode(frame=frame)}
        messages.append(message)
        frames.append(frame)
    stream_events_insert(stream_id=stream_id, events=stored)
    group_send_on_commit(group=stream, messages=messages)
    if stream_prune_due(first_seq=last_seq - count + 1, last_seq=last_seq, retention=retention):
        StreamEvent.objects.filter(stream_id=stream_id, seq__lte=last_seq - retention).delete()
    return frames


def stream_events_insert(*, stream_id: int, events: Sequence[tuple[int, dict, str]]) -> None:
    """Store the stream's events, each (seq, frame, row), in as few INSERTs as the database
    takes (SQLite: 249 events a query, its 999 parameters).

    What ``bulk_create`` stores, each value prepared by its field as Django's INSERT does,
    without the rest of ``bulk_create``: model instances, their checks, reading back the new
    ids (RETURNING), which nothing here uses. Profiled on a chat message (py-spy, GIL held, one
    daphne): ~116 of the ORM thread's ~590 us; callgrind, idle subtracted: 4.99 -> 4.59-4.78
    million instructions a message. Every field of StreamEvent but its id is one of these
    four (a test holds it so): a field added there must be added here."""
    connection = connections[router.db_for_write(StreamEvent)]
    quote, meta = connection.ops.quote_name, StreamEvent._meta
    fields = [meta.get_field(name) for name in STREAM_EVENT_FIELDS]
    insert = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
    stream_field, seq_field, frame_field, row_field = fields
    rows = [
        [
            stream_field.get_db_prep_save(stream_id, connection),
            seq_field.get_db_prep_save(seq, connection),
            frame_field.get_db_prep_save(frame, connection),
            row_field.get_db_prep_save(row, connection),
        ]
        for seq, frame, row in events
    ]
    batch = max(1, connection.ops.bulk_batch_size(fields, rows))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            values = connection.ops.bulk_insert_sql(fields, [["%s"] * len(fields)] * len(chunk))
            cursor.execute(insert + values, [value for row in chunk for value in row])


def stream_prune_due(*, first_seq: int, last_seq: int, retention: int) -> bool:
    """Whether events first_seq to last_seq, just stored, pass a multiple of a tenth of the retention:
    the older events are pruned then, a tenth at a time, rather than one per event. A DELETE with
    every chat message was 11 % of its CPU instructions (callgrind, one daphne). A stream keeps the
    last ``retention`` events at least, and fewer than 1.1 × ``retention`` (all of them under 20)."""
    every = max(1, retention // 10)
    return (first_seq - 1) // every != last_seq // every


def stream_seq_raise(*, stream: str, count: int) -> tuple[int, int] | None:
    """Raise the stream's last_seq by ``count``: its (pk, new last_seq), or None when there is no such stream.

    One statement, UPDATE ... RETURNING, where the ORM takes two (an UPDATE, then a SELECT
    of what it set): a query fewer for every event stored. On a database without it (SQLite
    before 3.35, which Django 5.2 still accepts), those two, which the UPDATE's lock makes as safe."""
    connection = connections[router.db_for_write(Stream)]
    if not update_returning_supported(connection=connection):
        if not Stream.objects.filter(name=stream).update(last_seq=F("last_seq") + count):
            return None
        return Stream.objects.values_list("pk", "last_seq").get(name=stream)
    quote, meta = connection.ops.quote_name, Stream._meta
    table = quote(meta.db_table)
    pk, name, last_seq = (quote(meta.get_field(field).column) for field in (meta.pk.name, "name", "last_seq"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {last_seq} = {last_seq} + %s WHERE {name} = %s RETURNING {pk}, {last_seq}",
            [count, stream],
        )
        return cursor.fetchone()


def update_returning_supported(*, connection) -> bool:
    """Does the database return columns from an UPDATE? Django's flag is true on Postgres and
    SQLite 3.35+, whose UPDATE returns as their INSERT does; not on MariaDB (RETURNING after an
    INSERT only) nor Oracle (RETURNING ... INTO)."""
    return connection.features.can_return_columns_from_insert and connection.vendor in ("postgresql", "sqlite")


def stream_delete(*, stream: str) -> None:
    """Forget the stream and its events, with the row that owned it, e.g. a liveblog:
    call it from that model's pre_delete receiver. Its LiveModel rows, which the cascade
    deletes after it in the same transaction, then find no stream to write to. Once
    committed, the pages following the stream are told (``StreamConsumer.stream_deleted``)."""
    Stream.objects.filter(name=stream).delete()
    group_send_on_commit(group=stream, messages=[{"type": "stream.deleted", "stream": stream}])


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
        await self.stream_send(stream=stream, seq=seq, text=message["text"])
        self.stream_seqs[stream] = seq
        # From its commit (group_send_on_commit stamps it) to this page: the delay pages see.
        self.meter.event_sent(committed=message.get("committed"))

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
            await self.stream_send(stream=stream, seq=frame["seq"], text=frame_encode(frame=frame))
            self.stream_seqs[stream] = frame["seq"]

    async def stream_send(self, *, stream: str, seq: int, text: str) -> None:
        """Send the page event ``seq`` of the stream: ``text`` is its JSON frame (encoded once
        for every page by the writer when live; from the database at a catch-up). A page that
        wants something else overrides it (the liveblog's fragments page gets HTML:
        blog.consumers.LiveblogFragmentsConsumer)."""
        await self.send(text_data=text)

    async def stream_resync(self, stream: str) -> None:
        """The page missed more than the stream keeps: tell it, and close; it reloads and reconnects."""
        self.stream_seqs[stream] = None
        await self.send_json({"type": "resync"})
        await self.close(code=CLOSE_RESYNC)

    async def stream_deleted(self, message):
        # The stream went with the row that owned it (stream_delete): what the page shows
        # is gone. A resync has it reload what it shows, and so find out.
        if self.stream_seqs.get(message["stream"]) is not None:
            await self.stream_resync(message["stream"])


def live_row_key(*, instance: LiveModel) -> str:
    """What the events of a row are stored under (StreamEvent.row): "<app>.<model>:<pk>"."""
    return f"{instance._meta.label_lower}:{instance.pk}"


def live_rows_deleted(*, rows: Sequence[LiveModel]) -> None:
    """Take what the deleted rows said out of every stream, and tell the pages that
    follow their streams, in the transaction of the delete.

    Each stored event of a row keeps its seq, but its frame becomes the row's
    ``deleted`` frame (a tombstone): a page catching up by seq finds no gap, and
    nothing of the row. (In a stream the row has left, an edit having changed its
    ``live_stream``, its events are deleted instead.) Then each row's stream gets its
    ``deleted`` event, unless the stream is gone: deleted with the row that owned it
    (``stream_delete``), whose cascade is deleting these rows.

    A few queries per stream and per ROWS_PER_QUERY rows, not per row (the deleted
    events of a stream are one INSERT: ``stream_extend``): deleting a user takes
    every message they wrote, by cascade, in one go.
    """
    rows_by_key = {live_row_key(instance=row): row for row in rows}
    live_rows_prefetch(rows=list(rows_by_key.values()))
    streams = {key: row.live_stream() for key, row in rows_by_key.items()}
    keys = list(rows_by_key)
    tombstones, strays = [], []
    for start in range(0, len(keys), ROWS_PER_QUERY):
        events = StreamEvent.objects.filter(row__in=keys[start : start + ROWS_PER_QUERY])
        for pk, seq, key, stream in events.values_list("pk", "seq", "row", "stream__name"):
            if stream == streams[key]:
                tombstones.append(StreamEvent(pk=pk, frame=rows_by_key[key].live_frame(event="deleted", seq=seq)))
            else:
                strays.append(pk)
    StreamEvent.objects.bulk_update(tombstones, ["frame"])  # in as few queries as the database takes
    StreamEvent.objects.filter(pk__in=strays).delete()
    by_stream: dict[str, list[str]] = {}
    for key, stream in streams.items():
        by_stream.setdefault(stream, []).append(key)
    for stream, stream_keys in by_stream.items():
        stream_extend(
            stream=stream,
            events=[(key, live_deleted_frame_for(instance=rows_by_key[key])) for key in stream_keys],
            retention=min(rows_by_key[key].live_retention for key in stream_keys),
            create=False,
        )


def live_deleted_frame_for(*, instance: LiveModel) -> Callable[[int], dict]:
    return lambda seq: instance.live_frame(event="deleted", seq=seq)


def live_rows_prefetch(*, rows: list[LiveModel]) -> None:
    """Load the parents of the rows, one query per relation: their frames may read them
    (a message's frame its room's slug), which would otherwise be a query per row."""
    by_model: dict[type[LiveModel], list[LiveModel]] = {}
    for row in rows:
        by_model.setdefault(type(row), []).append(row)
    for model, instances in by_model.items():
        prefetch_related_objects(instances, *(field.name for field in model._meta.concrete_fields if field.is_relation))


# The LiveModel rows of each deletion under way, by the atomic block that Django's
# Collector.delete() runs it in: one per call of delete() (a row's, a QuerySet's, the
# admin's), cascades included. Django sends pre_delete for every row a deletion takes
# before it deletes any, and post_delete after: the first post_delete handles them all
# at once. The rows of a deletion that failed in between stay under its block, which
# no other deletion runs in (a retry opens its own), until the block is collected.
DELETIONS: weakref.WeakKeyDictionary[transaction.Atomic, list[LiveModel]] = weakref.WeakKeyDictionary()


def live_saved(sender, instance, created: bool, raw: bool, **kwargs) -> None:
    if raw:  # loaddata: fixtures are not news
        return
    event = "created" if created else "updated"
    stream_append(
        stream=instance.live_stream(),
        frame_for=lambda seq: instance.live_frame(event=event, seq=seq),
        retention=instance.live_retention,
        row=live_row_key(instance=instance),
    )


def deletion_block(*, using: str) -> transaction.Atomic:
    """The atomic block of the deletion sending a pre_delete or post_delete: the innermost
    one open, as Collector.delete() sends them from within its own."""
    return connections[using].atomic_blocks[-1]


def live_deleting(sender, instance, using: str, **kwargs) -> None:
    DELETIONS.setdefault(deletion_block(using=using), []).append(instance)


def live_deleted(sender, instance, using: str, **kwargs) -> None:
    rows = DELETIONS.pop(deletion_block(using=using), None)
    if rows is not None:  # else done already, at the first post_delete of the deletion
        live_rows_deleted(rows=rows)


def receivers_connect() -> None:
    # Per LiveModel, not for every model: a model with no receivers is deleted with
    # one DELETE (Django's fast delete), e.g. the events pruned at every save.
    for model in apps.get_models():
        if issubclass(model, LiveModel):
            uid = f"realtime_common.live.{model._meta.label}"
            post_save.connect(live_saved, sender=model, dispatch_uid=uid)
            pre_delete.connect(live_deleting, sender=model, dispatch_uid=uid)
            post_delete.connect(live_deleted, sender=model, dispatch_uid=uid)
