"""Writers at once, each on a connection of its own (``concurrent_writers``: on Postgres,
where SQLite's single writer no longer queues them): the liveblog's events stay
numbered one by one, in the order their changes were committed."""

from functools import partial

import pytest

from blog.models import Post
from blog.services import post_create, post_update
from blog.wire import liveblog_stream, post_html
from realtime_common.streams import stream_frames_since

pytestmark = pytest.mark.django_db(transaction=True)


def test_posts_published_at_once_get_the_liveblogs_next_seqs_one_each(concurrent_writers, liveblog):
    posts = concurrent_writers(*(partial(post_create, liveblog=liveblog, body=f"post {n}") for n in range(8)))
    frames = stream_frames_since(stream=liveblog_stream(liveblog_id=liveblog.pk), seq=0)
    assert [frame["seq"] for frame in frames] == list(range(1, 9))
    assert sorted(frame["post"]["id"] for frame in frames) == sorted(post.pk for post in posts)


def test_edits_of_a_post_at_once_end_with_the_event_of_the_edit_that_stayed(concurrent_writers, liveblog):
    post = post_create(liveblog=liveblog, body="draft")

    def edit(body: str) -> None:
        post_update(post=Post.objects.get(pk=post.pk), body=body)

    concurrent_writers(*(partial(edit, f"edit {n}") for n in range(6)))
    frames = stream_frames_since(stream=liveblog_stream(liveblog_id=liveblog.pk), seq=0)
    assert [frame["seq"] for frame in frames] == list(range(1, 8))
    # The row lock of the post orders the edits as the stream's lock orders their events.
    assert frames[-1]["post"]["html"] == post_html(body=Post.objects.get(pk=post.pk).body)
