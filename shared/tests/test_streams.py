"""A fresh model made live with the three steps of realtime_common.streams:
changes reach the pages after commit, in order, a rollback stays silent, and a
page that reconnects with ``since`` catches up, or resyncs when it is too late."""

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import path

from realtime_common import streams
from realtime_common.models import StreamEvent
from realtime_common.streams import CLOSE_RESYNC, stream_frames_since, stream_prune_due, stream_seq
from tests.liveapp.consumers import NoteConsumer
from tests.liveapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter([path("notes/<slug:board>/", NoteConsumer.as_asgi())])


async def page(board: str = "a", since: int | str | None = None) -> WebsocketCommunicator:
    query = "" if since is None else f"?since={since}"
    communicator = WebsocketCommunicator(application, f"/notes/{board}/{query}")
    connected, _ = await communicator.connect()
    assert connected
    return communicator


create = sync_to_async(Note.objects.create)


@pytest.mark.usefixtures("layer")
async def test_changes_reach_the_page_in_order_after_commit():
    socket = await page()
    note = await create(board="a", text="one")
    assert await socket.receive_json_from() == {"type": "note.created", "seq": 1, "id": note.pk, "text": "one"}
    note.text = "two"
    await sync_to_async(note.save)()
    assert await socket.receive_json_from() == {"type": "note.updated", "seq": 2, "id": note.pk, "text": "two"}
    await sync_to_async(note.delete)()
    assert (await socket.receive_json_from())["type"] == "note.deleted"
    await socket.disconnect()


@pytest.mark.usefixtures("layer")
async def test_a_rollback_stays_silent_and_takes_its_seq_with_it():
    socket = await page()

    @sync_to_async
    def save_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            Note.objects.create(board="a", text="never")
            raise RuntimeError("rolled back")

    await save_then_fail()
    kept = await create(board="a", text="kept")
    assert await socket.receive_json_from() == {"type": "note.created", "seq": 1, "id": kept.pk, "text": "kept"}
    await socket.disconnect()


@pytest.mark.usefixtures("layer")
async def test_other_streams_pages_hear_nothing():
    other = await page(board="b")
    await create(board="a", text="for a")
    await create(board="b", text="for b")
    assert (await other.receive_json_from())["text"] == "for b"
    await other.disconnect()


@pytest.mark.usefixtures("layer")
async def test_since_catches_up_then_goes_live_without_duplicates():
    for text in ["one", "two", "three"]:
        await create(board="a", text=text)
    socket = await page(since=1)
    assert [(await socket.receive_json_from())["text"] for _ in range(2)] == ["two", "three"]
    await create(board="a", text="four")
    assert (await socket.receive_json_from())["seq"] == 4
    assert await socket.receive_nothing(timeout=0.1)
    await socket.disconnect()


@pytest.mark.usefixtures("layer")
async def test_a_lost_broadcast_is_filled_in_from_the_stored_events(monkeypatch):
    socket = await page()
    monkeypatch.setattr(streams, "group_send_on_commit", lambda **kwargs: None)
    await create(board="a", text="lost")
    monkeypatch.undo()
    await create(board="a", text="arrives")
    assert [(await socket.receive_json_from())["text"] for _ in range(2)] == ["lost", "arrives"]
    await socket.disconnect()


@pytest.mark.usefixtures("layer")
@pytest.mark.parametrize("since", [0, 9])
async def test_a_since_that_cannot_be_replayed_gets_resync_and_close(monkeypatch, since):
    monkeypatch.setattr(Note, "live_retention", 2)
    for text in "abcd":
        await create(board="a", text=text)
    socket = WebsocketCommunicator(application, f"/notes/a/?since={since}")
    assert (await socket.connect())[0]
    assert await socket.receive_json_from() == {"type": "resync"}
    assert await socket.receive_output() == {"type": "websocket.close", "code": CLOSE_RESYNC}


def test_events_are_kept_up_to_the_models_retention(monkeypatch):
    monkeypatch.setattr(Note, "live_retention", 3)
    for text in "abcde":
        Note.objects.create(board="a", text=text)
    assert list(StreamEvent.objects.values_list("seq", flat=True)) == [3, 4, 5]
    assert stream_frames_since(stream="notes-a", seq=1) is None
    assert [frame["seq"] for frame in stream_frames_since(stream="notes-a", seq=2)] == [3, 4, 5]
    assert stream_frames_since(stream="notes-a", seq=5) == []
    assert stream_frames_since(stream="notes-a", seq=6) is None
    assert stream_seq(stream="notes-b") == 0


def test_a_long_retention_is_pruned_a_tenth_at_a_time_and_never_below_it(monkeypatch):
    monkeypatch.setattr(Note, "live_retention", 30)  # pruned 3 at a time
    kept = []
    for number in range(1, 41):
        Note.objects.create(board="a", text=str(number))
        kept.append(StreamEvent.objects.count())
    # Never fewer than the retention once there were as many, never 10 % more.
    assert kept[29:] == [30, 31, 32, 30, 31, 32, 30, 31, 32, 30, 31]
    assert [frame["seq"] for frame in stream_frames_since(stream="notes-a", seq=9)] == list(range(10, 41))
    assert stream_frames_since(stream="notes-a", seq=8) is None


@pytest.mark.parametrize(
    ("first_seq", "last_seq", "retention", "due"),
    [
        (7, 7, 5, True),  # under 20: every event
        (499, 499, 500, False),
        (500, 500, 500, True),
        (501, 501, 500, False),
        (540, 560, 500, True),  # a batch that passes 550
        (551, 599, 500, False),
    ],
)
def test_a_prune_is_due_when_the_new_events_pass_a_tenth_of_the_retention(first_seq, last_seq, retention, due):
    assert stream_prune_due(first_seq=first_seq, last_seq=last_seq, retention=retention) is due


def test_many_events_are_stored_whole_in_the_batches_the_database_takes():
    # 600 events: three INSERTs on SQLite (249 a query, its 999 parameters), one on Postgres.
    events = [(f"tests.note:{n}", lambda seq, n=n: {"type": "note", "seq": seq, "text": f"é {n}"}) for n in range(600)]
    fields = [StreamEvent._meta.get_field(name) for name in streams.STREAM_EVENT_FIELDS]
    batch = connection.ops.bulk_batch_size(fields, events)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        frames = streams.stream_extend(stream="notes-many", events=events, retention=1000)
    inserts = [query for query in queries if query["sql"].startswith(f'INSERT INTO "{StreamEvent._meta.db_table}"')]
    assert len(inserts) == -(-600 // batch) == (3 if connection.vendor == "sqlite" else 1)
    stored = list(StreamEvent.objects.filter(stream__name="notes-many").values_list("seq", "row", "frame"))
    assert stored == [(n + 1, f"tests.note:{n}", {"type": "note", "seq": n + 1, "text": f"é {n}"}) for n in range(600)]
    assert frames == [frame for _, _, frame in stored]
    assert stream_frames_since(stream="notes-many", seq=0) == frames


def test_every_field_of_an_event_but_its_id_is_one_that_stream_events_insert_stores():
    """stream_events_insert names its columns (no bulk_create): a field added to StreamEvent must be added there."""
    stored = {field.name for field in StreamEvent._meta.concrete_fields if not field.primary_key}
    assert stored == set(streams.STREAM_EVENT_FIELDS)


def test_a_frame_without_its_seq_is_refused_with_the_change(monkeypatch):
    monkeypatch.setattr(Note, "live_frame", lambda self, *, event, seq: {"type": "note"})
    with pytest.raises(ValueError, match="must carry its seq"):
        Note.objects.create(board="a", text="x")
    assert not Note.objects.exists()


def test_bulk_writes_that_bypass_save_make_no_events():
    Note.objects.bulk_create([Note(board="a", text="quiet")])
    Note.objects.update(text="still quiet")
    assert stream_seq(stream="notes-a") == 0


@pytest.mark.parametrize(
    ("query", "since"),
    [
        (b"", None),
        (b"since=0", 0),
        (b"since=41", 41),
        (b"x=1&since=7", 7),
        (b"since=1&since=2", 2),
        (b"since=" + b"9" * 18, 10**18 - 1),
    ],
)
def test_since_parses_a_seq(query, since):
    assert streams.stream_since_parse(query_string=query) == since


@pytest.mark.parametrize(
    "query",
    [
        b"since=",
        b"since=-1",
        b"since=x",
        b"since=1.5",
        b"since=%C2%B2",
        b"since=%EF%BC%91",
        b"since=" + b"9" * 19,
        b"since=" + b"9" * 5000,
    ],
)
def test_since_refuses_what_is_not_a_seq_before_int_sees_it(query):
    with pytest.raises(ValueError):
        streams.stream_since_parse(query_string=query)


def test_concurrent_writers_get_consecutive_seqs_and_a_page_catching_up_never_skips_one(concurrent_writers):
    """Writers on connections of their own, all at once, into a stream whose row does not
    exist yet (they race to create it), while a page catches up by ``since`` again and
    again: seqs 1 to n, one per change, and no read ever gets an event before every
    earlier one is there to get, which would lose that one for good."""
    writers, notes_each = 8, 5
    finished = []  # one entry per writer that is done

    def write() -> None:
        try:
            for number in range(notes_each):
                Note.objects.create(board="a", text=str(number))
        finally:
            finished.append(True)

    def catch_up() -> int:
        seq = 0
        while True:
            last_read = len(finished) == writers  # taken before the read: that read then sees every commit
            frames = stream_frames_since(stream="notes-a", seq=seq)
            assert frames is not None, f"no replay after {seq}"
            assert [frame["seq"] for frame in frames] == list(range(seq + 1, seq + 1 + len(frames)))
            seq += len(frames)
            if last_read:
                return seq

    total = writers * notes_each
    assert concurrent_writers(*[write] * writers, catch_up)[-1] == total
    frames = stream_frames_since(stream="notes-a", seq=0)
    assert [frame["seq"] for frame in frames] == list(range(1, total + 1))
    assert sorted(frame["id"] for frame in frames) == sorted(Note.objects.values_list("pk", flat=True))
    assert stream_seq(stream="notes-a") == total
