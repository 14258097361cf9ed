"""The JSON a page receives, built in one place so the page, the socket and the
resync snapshot always agree, and what the page's socket URL may carry. The
protocol is documented in the README."""

from django.utils.html import linebreaks, urlize
from django.utils.safestring import SafeString, mark_safe


def post_html(*, body: str) -> SafeString:
    """Untrusted text to safe HTML: everything escaped, then paragraphs and links added."""
    # Safe: urlize escaped every character of the text; linebreaks only adds <p> and <br>.
    return mark_safe(linebreaks(urlize(body, nofollow=True, autoescape=True)))  # noqa: S308


def post_data(*, post) -> dict:
    return {
        "id": post.pk,
        "html": post_html(body=post.body),
        "created": post.created.isoformat(),
        "updated": post.updated.isoformat(),
    }


def post_frame(*, post, event: str, seq: int) -> dict:
    return {
        "type": f"post.{event}",
        "liveblog": post.liveblog.slug,
        "seq": seq,
        "post": {"id": post.pk} if event == "deleted" else post_data(post=post),
    }


def liveblog_stream(*, liveblog_id: int) -> str:
    """The stream of a liveblog's post events, and the channel layer group of its pages."""
    return f"liveblog-{liveblog_id}"
