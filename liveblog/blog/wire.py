"""The JSON a page receives, built in one place so the page, the socket and the
resync snapshot always agree. The protocol is documented in the README."""

from django.utils.html import linebreaks, urlize
from django.utils.safestring import SafeString, mark_safe

from .models import Post


def post_html(*, body: str) -> SafeString:
    """Untrusted text to safe HTML: everything escaped, then paragraphs and links added."""
    # Safe: urlize escaped every character of the text; linebreaks only adds <p> and <br>.
    return mark_safe(linebreaks(urlize(body, nofollow=True, autoescape=True)))  # noqa: S308


def post_data(*, post: Post) -> dict:
    return {
        "id": post.pk,
        "html": post_html(body=post.body),
        "created": post.created.isoformat(),
        "updated": post.updated.isoformat(),
    }


def event_frame(*, event_type: str, post: Post, seq: int) -> dict:
    return {
        "type": event_type,
        "liveblog": post.liveblog.slug,
        "seq": seq,
        "post": {"id": post.pk} if event_type == "post.deleted" else post_data(post=post),
    }


def liveblog_group(*, liveblog_id: int) -> str:
    return f"liveblog-{liveblog_id}"
