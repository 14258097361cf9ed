"""Reads."""

from django.db.models import QuerySet

from .models import Event, Liveblog, Post


def liveblog_list() -> QuerySet[Liveblog]:
    return Liveblog.objects.order_by("title")


def liveblog_get(*, slug: str) -> Liveblog | None:
    return Liveblog.objects.filter(slug=slug).first()


def liveblog_seq(*, liveblog_id: int) -> int | None:
    """The liveblog's newest seq; None once the liveblog is deleted."""
    return Liveblog.objects.filter(pk=liveblog_id).values_list("last_seq", flat=True).first()


def post_list(*, liveblog: Liveblog) -> QuerySet[Post]:
    return liveblog.posts.select_related("liveblog")


def event_frames_since(*, liveblog_id: int, seq: int) -> list[dict] | None:
    """Every event after ``seq`` in order, or None when they cannot all be replayed:
    older ones were pruned, ``seq`` is from another database (ahead of ours), or
    the liveblog is gone."""
    last_seq = liveblog_seq(liveblog_id=liveblog_id)
    if last_seq is None or seq > last_seq:
        return None
    frames = list(
        Event.objects.filter(liveblog_id=liveblog_id, seq__gt=seq).order_by("seq").values_list("frame", flat=True)
    )
    if seq < last_seq and (not frames or frames[0]["seq"] != seq + 1):
        return None
    return frames
