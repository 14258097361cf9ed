"""Whatever deletes a live row (its delete(), a QuerySet's as the admin's bulk delete,
a cascade from a parent that owns no stream), nothing it said stays in any stream, and
the pages following it are told; a parent that owns a stream takes it, and every event
in it, with itself."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.db.models.signals import pre_delete
from django.test.utils import CaptureQueriesContext
from django.urls import path

from realtime_common import streams
from realtime_common.models import Stream, StreamEvent
from realtime_common.streams import CLOSE_RESYNC, stream_frames_since, stream_seq
from tests.liveapp.consumers import CardConsumer
from tests.liveapp.models import Author, Board, Card

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter([path("cards/<int:board>/", CardConsumer.as_asgi())])


@pytest.fixture
def boards() -> dict[str, Board]:
    return {name: Board.objects.create(name=name) for name in "ab"}


@pytest.fixture
def authors() -> dict[str, Author]:
    return {name: Author.objects.create(name=name) for name in ["alice", "bob"]}


def cards_write(*, board: Board, author: Author, count: int) -> list[Card]:
    return [Card.objects.create(board=board, author=author, text=f"{author} wrote {number}") for number in range(count)]


def stored_texts() -> str:
    """Every frame stored, of every stream, as one text to search."""
    return json.dumps(list(StreamEvent.objects.values_list("frame", flat=True)))


def stream_of(board: Board) -> str:
    return f"cards-{board.pk}"


def frames_of(board: Board) -> list[dict]:
    return stream_frames_since(stream=stream_of(board), seq=0)


async def page(board: Board) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/cards/{board.pk}/")
    assert (await communicator.connect())[0]
    return communicator


@pytest.mark.usefixtures("layer")
async def test_deleting_an_author_scrubs_what_they_wrote_from_every_stream_and_tells_the_pages(boards, authors):
    alice, bob = authors["alice"], authors["bob"]
    in_a = await sync_to_async(cards_write)(board=boards["a"], author=alice, count=2)
    await sync_to_async(cards_write)(board=boards["a"], author=bob, count=1)
    await sync_to_async(cards_write)(board=boards["b"], author=alice, count=1)
    socket = await page(boards["a"])

    await sync_to_async(alice.delete)()  # a cascade from a parent that owns no stream

    deleted = [await socket.receive_json_from() for _ in in_a]
    assert deleted == [
        {"type": "card.deleted", "board": "a", "seq": seq, "id": card.pk} for seq, card in zip([4, 5], in_a)
    ]
    assert await socket.receive_nothing(timeout=0.1)
    texts = await sync_to_async(stored_texts)()
    assert "alice wrote" not in texts and "bob wrote 0" in texts
    # Her events keep their seqs, as tombstones: a page catching up finds no gap.
    frames = await sync_to_async(frames_of)(boards["a"])
    assert [(frame["seq"], frame["type"]) for frame in frames] == [
        (1, "card.deleted"),
        (2, "card.deleted"),
        (3, "card.created"),
        (4, "card.deleted"),
        (5, "card.deleted"),
    ]
    assert [frame["type"] for frame in await sync_to_async(frames_of)(boards["b"])] == ["card.deleted"] * 2
    await socket.disconnect()


@pytest.mark.parametrize(
    "delete",
    [
        pytest.param(lambda alice: [card.delete() for card in Card.objects.filter(author=alice)], id="instance"),
        # The admin's bulk delete: ModelAdmin.delete_queryset is QuerySet.delete().
        pytest.param(lambda alice: Card.objects.filter(author=alice).delete(), id="queryset"),
        pytest.param(lambda alice: alice.delete(), id="author-cascade"),
        pytest.param(lambda alice: Author.objects.filter(pk=alice.pk).delete(), id="author-queryset-cascade"),
    ],
)
def test_every_way_of_deleting_leaves_a_deleted_event_per_row_and_no_text(boards, authors, delete):
    alice, bob = authors["alice"], authors["bob"]
    cards = cards_write(board=boards["a"], author=alice, count=3)
    cards_write(board=boards["a"], author=bob, count=1)
    delete(alice)
    assert "alice wrote" not in stored_texts()
    frames = frames_of(boards["a"])
    assert [frame["seq"] for frame in frames] == list(range(1, 8))
    assert [(frame["type"], frame["id"]) for frame in frames[4:]] == [("card.deleted", card.pk) for card in cards]


@pytest.mark.usefixtures("layer")
async def test_deleting_the_parent_that_owns_the_stream_deletes_it_and_resyncs_its_pages(boards, authors):
    await sync_to_async(cards_write)(board=boards["a"], author=authors["alice"], count=2)
    await sync_to_async(cards_write)(board=boards["b"], author=authors["alice"], count=1)
    socket = await page(boards["a"])
    other = await page(boards["b"])

    await sync_to_async(boards["a"].delete)()

    assert await socket.receive_json_from() == {"type": "resync"}  # no card.deleted first: nothing is left to delete
    assert await socket.receive_output() == {"type": "websocket.close", "code": CLOSE_RESYNC}
    assert await sync_to_async(list)(Stream.objects.values_list("name", flat=True)) == [stream_of(boards["b"])]
    assert await sync_to_async(stored_texts)() == json.dumps(await sync_to_async(frames_of)(boards["b"]))
    assert await other.receive_nothing(timeout=0.1)
    await other.disconnect()


def test_deleting_an_author_costs_as_many_queries_for_40_rows_as_for_10(boards, authors):
    """Per stream, not per row: 10 or 40 cards in each of two boards, all of whose
    deleted events the stream keeps (Card.live_retention is 500), in one INSERT per stream."""
    queries, inserts = [], []
    for author, count in [(authors["alice"], 10), (authors["bob"], 40)]:
        for board in boards.values():
            cards_write(board=board, author=author, count=count)
        with CaptureQueriesContext(connection) as captured:
            author.delete()
        queries.append(len(captured))
        inserts.append([query["sql"] for query in captured if query["sql"].startswith('INSERT INTO "realtime_common')])
        assert "wrote" not in stored_texts()
    assert queries[0] == queries[1]
    assert [len(statements) for statements in inserts] == [len(boards)] * 2
    assert [frame["type"] for frame in frames_of(boards["a"])] == ["card.deleted"] * 100


def test_deleting_more_rows_than_a_stream_keeps_stores_only_the_newest_deleted_events(boards, authors, monkeypatch):
    monkeypatch.setattr(Card, "live_retention", 5)
    cards_write(board=boards["a"], author=authors["alice"], count=10)
    authors["alice"].delete()
    assert stream_seq(stream=stream_of(boards["a"])) == 20
    kept = stream_frames_since(stream=stream_of(boards["a"]), seq=15)
    assert [(frame["seq"], frame["type"]) for frame in kept] == [(seq, "card.deleted") for seq in range(16, 21)]
    assert stream_frames_since(stream=stream_of(boards["a"]), seq=14) is None  # the other 5 were never stored
    assert "wrote" not in stored_texts()


def test_a_row_moved_to_another_stream_leaves_nothing_in_the_one_it_left(boards, authors):
    (card,) = cards_write(board=boards["a"], author=authors["alice"], count=1)
    card.board = boards["b"]
    card.save()
    card.delete()
    assert "alice wrote" not in stored_texts()
    assert frames_of(boards["a"]) is None  # its one event is gone: a page from 0 resyncs
    assert [frame["type"] for frame in frames_of(boards["b"])] == ["card.deleted", "card.deleted"]


def test_a_deletion_that_failed_then_succeeds_announces_each_row_once(boards, authors):
    alice = authors["alice"]
    cards = cards_write(board=boards["a"], author=alice, count=2)

    def fail_once(sender, **kwargs):
        pre_delete.disconnect(fail_once, sender=Card)
        raise RuntimeError("the delete failed")

    pre_delete.connect(fail_once, sender=Card)
    with pytest.raises(RuntimeError):
        alice.delete()
    alice.delete()
    deleted = [frame["id"] for frame in frames_of(boards["a"]) if frame["seq"] > len(cards)]
    assert deleted == [card.pk for card in cards]
    assert len(streams.DELETIONS) == 0


def test_a_deletion_retried_after_its_rows_changed_scrubs_only_the_rows_it_deletes(boards, authors):
    """The first attempt took the moved card before it failed; the retry, of the same
    author object, no longer deletes that card: its events stay as they are."""
    alice, bob = authors["alice"], authors["bob"]
    moved, deleted = cards_write(board=boards["a"], author=alice, count=2)

    def fail_once(sender, **kwargs):
        pre_delete.disconnect(fail_once, sender=Card)
        raise RuntimeError("the delete failed")

    pre_delete.connect(fail_once, sender=Card)  # after live_deleting: that one has taken the first card
    with pytest.raises(RuntimeError):
        alice.delete()
    moved.author = bob
    moved.save()
    alice.delete()
    assert [(frame["seq"], frame["type"], frame["id"]) for frame in frames_of(boards["a"])] == [
        (1, "card.created", moved.pk),
        (2, "card.deleted", deleted.pk),
        (3, "card.updated", moved.pk),
        (4, "card.deleted", deleted.pk),
    ]
    assert "alice wrote 0" in stored_texts()
