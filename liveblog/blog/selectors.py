"""Reads."""

from django.db.models import QuerySet

from realtime_common.streams import stream_seq

from .models import Liveblog, Post
from .wire import liveblog_stream, post_data


def liveblog_list() -> QuerySet[Liveblog]:
    return Liveblog.objects.order_by("title")


def liveblog_get(*, slug: str) -> Liveblog | None:
    return Liveblog.objects.filter(slug=slug).first()


def liveblog_get_by_id(*, liveblog_id: int) -> Liveblog | None:
    return Liveblog.objects.filter(pk=liveblog_id).first()


def post_list(*, liveblog: Liveblog) -> QuerySet[Post]:
    return liveblog.posts.select_related("liveblog")


def post_snapshot(*, liveblog: Liveblog) -> tuple[int, list[dict]]:
    """The seq of the liveblog's stream, and its posts as pages receive them.

    The seq is read before the posts: an event in between is then replayed to the
    page and applied again, which is harmless, instead of being skipped."""
    seq = stream_seq(stream=liveblog_stream(liveblog_id=liveblog.pk))
    return seq, [post_data(post=post) for post in post_list(liveblog=liveblog)]
