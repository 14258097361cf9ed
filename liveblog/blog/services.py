"""Writes. Every change to a post goes out to open pages as an event of its
liveblog's stream (Post is a LiveModel), whoever makes it: these functions, the
admin, a shell."""

from .models import Liveblog, Post


def post_create(*, liveblog: Liveblog, body: str) -> Post:
    return Post.objects.create(liveblog=liveblog, body=body)


def post_update(*, post: Post, body: str) -> Post:
    post.body = body
    post.save()
    return post


def post_delete(*, post: Post) -> None:
    post.delete()
