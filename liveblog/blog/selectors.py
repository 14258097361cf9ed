"""Reads."""

from django.db.models import QuerySet

from .models import Liveblog, Post


def liveblog_list() -> QuerySet[Liveblog]:
    return Liveblog.objects.order_by("title")


def liveblog_get(*, slug: str) -> Liveblog | None:
    return Liveblog.objects.filter(slug=slug).first()


def post_list(*, liveblog: Liveblog) -> QuerySet[Post]:
    return liveblog.posts.select_related("liveblog")
