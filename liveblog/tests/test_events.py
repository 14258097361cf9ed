"""Event bookkeeping, without sockets."""

import pytest

from blog import services
from blog.models import Event, Liveblog
from blog.selectors import event_frames_since
from blog.services import post_create, post_delete

pytestmark = pytest.mark.django_db


@pytest.fixture
def liveblog():
    return Liveblog.objects.create(slug="launch", title="Launch")


def test_seq_counts_per_liveblog(liveblog):
    other = Liveblog.objects.create(slug="other", title="Other")
    post_create(liveblog=liveblog, body="a")
    post_create(liveblog=other, body="b")
    post_create(liveblog=liveblog, body="c")
    liveblog.refresh_from_db()
    other.refresh_from_db()
    assert (liveblog.last_seq, other.last_seq) == (2, 1)


def test_old_events_are_pruned_and_then_cannot_be_replayed(liveblog, monkeypatch):
    monkeypatch.setattr(services, "EVENT_RETENTION", 3)
    for body in "abcde":
        post_create(liveblog=liveblog, body=body)
    assert list(Event.objects.values_list("seq", flat=True)) == [3, 4, 5]
    assert event_frames_since(liveblog_id=liveblog.pk, seq=1) is None
    assert [frame["seq"] for frame in event_frames_since(liveblog_id=liveblog.pk, seq=2)] == [3, 4, 5]
    assert event_frames_since(liveblog_id=liveblog.pk, seq=5) == []
    assert event_frames_since(liveblog_id=liveblog.pk, seq=6) is None


def test_deleting_a_liveblog_takes_its_posts_and_events(liveblog):
    post_create(liveblog=liveblog, body="a")
    liveblog.delete()
    assert not Event.objects.exists()


def test_deleting_a_post_is_an_event(liveblog):
    post = post_create(liveblog=liveblog, body="a")
    post_id = post.pk
    post_delete(post=post)
    assert Event.objects.last().frame == {"type": "post.deleted", "liveblog": "launch", "seq": 2, "post": {"id": post_id}}
