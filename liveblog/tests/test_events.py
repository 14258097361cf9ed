"""Event bookkeeping, without sockets: every writer stores a post with its event, atomically."""

import pytest
from django.db import connection

from blog.models import Liveblog, Post
from blog.services import post_create, post_delete
from realtime_common import streams
from realtime_common.models import Stream, StreamEvent
from realtime_common.streams import stream_frames_since, stream_seq

pytestmark = pytest.mark.django_db


def stream_of(liveblog: Liveblog) -> str:
    return f"liveblog-{liveblog.pk}"


def test_seq_counts_per_liveblog(liveblog):
    other = Liveblog.objects.create(slug="other", title="Other")
    post_create(liveblog=liveblog, body="a")
    post_create(liveblog=other, body="b")
    post_create(liveblog=liveblog, body="c")
    assert (stream_seq(stream=stream_of(liveblog)), stream_seq(stream=stream_of(other))) == (2, 1)


def test_old_events_are_pruned_and_then_cannot_be_replayed(liveblog, monkeypatch):
    monkeypatch.setattr(Post, "live_retention", 3)
    for body in "abcde":
        post_create(liveblog=liveblog, body=body)
    stream = stream_of(liveblog)
    assert list(StreamEvent.objects.values_list("seq", flat=True)) == [3, 4, 5]
    assert stream_frames_since(stream=stream, seq=1) is None
    assert [frame["seq"] for frame in stream_frames_since(stream=stream, seq=2)] == [3, 4, 5]
    assert stream_frames_since(stream=stream, seq=5) == []
    assert stream_frames_since(stream=stream, seq=6) is None


def test_deleting_a_liveblog_takes_its_posts_and_events_without_announcing_them(liveblog):
    post_create(liveblog=liveblog, body="a")
    post_create(liveblog=liveblog, body="b")
    liveblog.delete()
    assert not Post.objects.exists()
    assert not Stream.objects.exists() and not StreamEvent.objects.exists()


def test_deleting_a_post_is_an_event(liveblog):
    post = post_create(liveblog=liveblog, body="a")
    post_id = post.pk
    post_delete(post=post)
    assert StreamEvent.objects.last().frame == {
        "type": "post.deleted",
        "liveblog": "launch",
        "seq": 2,
        "post": {"id": post_id},
    }


def test_a_deleted_post_leaves_no_body_in_its_stream(liveblog):
    post = post_create(liveblog=liveblog, body="first draft")
    post.body = "second draft"
    post.save()
    Post.objects.filter(pk=post.pk).delete()  # as the admin's bulk delete
    frames = stream_frames_since(stream=stream_of(liveblog), seq=0)
    # Its earlier events keep their seqs, as tombstones: a page catching up finds no gap.
    assert frames == [
        {"type": "post.deleted", "liveblog": "launch", "seq": seq, "post": {"id": post.pk}} for seq in (1, 2, 3)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda liveblog: post_create(liveblog=liveblog, body="service"), id="service"),
        pytest.param(lambda liveblog: Post(liveblog=liveblog, body="bare save").save(), id="bare-save"),
        pytest.param(lambda liveblog: Post.objects.create(liveblog=liveblog, body="create"), id="objects-create"),
    ],
)
def test_a_post_whose_event_cannot_be_stored_is_not_stored_either(liveblog, monkeypatch, write):
    # transaction=True: autocommit, as in a shell or `manage.py post`, where
    # Django commits a plain save before its post_save receivers run.
    assert connection.get_autocommit()

    def fail(**kwargs):
        raise RuntimeError("the event table is unwritable")

    monkeypatch.setattr(streams, "stream_events_insert", fail)
    with pytest.raises(RuntimeError):
        write(liveblog)
    assert not Post.objects.exists()
    assert stream_seq(stream=stream_of(liveblog)) == 0


@pytest.mark.django_db(transaction=True)
def test_an_update_whose_event_cannot_be_stored_keeps_the_old_body(liveblog, monkeypatch):
    post = post_create(liveblog=liveblog, body="before")
    monkeypatch.setattr(streams, "stream_events_insert", lambda **kwargs: (_ for _ in ()).throw(RuntimeError("no")))
    post.body = "after"
    with pytest.raises(RuntimeError):
        post.save()
    assert Post.objects.get().body == "before"
