"""The JSON a page receives, built in one place so the page, the socket and the
resync snapshot always agree, and the HTML the fragments page receives, rendered
from that JSON with the page's own templates. The protocols are documented in the
liveblog/README.md ("The liveblog protocol", "The two liveblog pages")."""

import functools
import json
from datetime import datetime

from django.template.loader import render_to_string
from django.utils.html import linebreaks, urlize
from django.utils.safestring import SafeString, mark_safe

# created and updated are stamped microseconds apart on insert; an edit is later than
# this. The same rule as liveblog.js's, which decides it in the browser on the JSON page.
EDITED_AFTER_SECONDS = 1
# Fragments rendered once per process and event, for every page of the process, which all get
# it within moments: only the newest few are ever asked for again. A frame is at most ~120 KB
# (10,000 characters escaped as JSON) and its fragment as much: a few MB at worst.
FRAGMENTS_CACHED = 16


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


def post_view(*, post: dict) -> dict:
    """A post's data (post_data, or a frame's "post") as blog/_post.html shows it: with its
    time and whether it was edited worked out here, as no script on the fragments page formats posts."""
    created, updated = datetime.fromisoformat(post["created"]), datetime.fromisoformat(post["updated"])
    return {
        **post,
        # Safe: post_html made it, before the frame was stored; from JSON it is a plain str again.
        "html": mark_safe(post["html"]),  # noqa: S308
        "created_at": created,
        "edited": (updated - created).total_seconds() >= EDITED_AFTER_SECONDS,
    }


@functools.lru_cache(maxsize=FRAGMENTS_CACHED)
def post_fragment(*, text: str, created_as_update: bool = False) -> str:
    """The HTML the fragments page swaps in for one event, from its frame as the socket
    layer carries it (``text``): rendered once per process, not once per page.

    Keyed by the frame itself, not by (stream, seq): a deletion rewrites the stored frames
    of the post's events (tombstones), and a liveblog deleted and created again restarts
    its stream's seqs; a frame that changed is a different key.

    ``created_as_update``: the page already shows the post (it came in the list sent on
    connect), so it is replaced in place rather than added a second time."""
    frame = json.loads(text)
    event = frame["type"].removeprefix("post.")
    if event == "created" and created_as_update:
        event = "updated"
    post = frame["post"] if event == "deleted" else post_view(post=frame["post"])
    return render_to_string("blog/_post_event.html", {"event": event, "post": post})


def frame_post_id(*, text: str) -> int:
    return json.loads(text)["post"]["id"]


def posts_fragment(*, posts: list[dict]) -> str:
    """What the fragments page gets on connect: the list as it is now. (Its badge is the extension's:
    frontend/js/htmx-socket-state.js.)"""
    return render_to_string("blog/_posts.html", {"posts": [post_view(post=post) for post in posts], "oob": True})


def liveblog_gone_fragment() -> str:
    return render_to_string("blog/_gone.html")
