"""Writes. Every change to a post goes out to open pages through the receivers,
whoever makes it (these functions, the admin, a shell), once it is committed."""

from django.db import transaction
from django.db.models import F

from realtime_common.broadcast import group_send_on_commit
from realtime_common.consumers import frame_encode

from .models import Event, Liveblog, Post
from .wire import event_frame, liveblog_group

# Events kept per liveblog for catching up; a page that missed more reloads its list.
EVENT_RETENTION = 500


def post_create(*, liveblog: Liveblog, body: str) -> Post:
    return Post.objects.create(liveblog=liveblog, body=body)


def post_update(*, post: Post, body: str) -> Post:
    post.body = body
    post.save()
    return post


def post_delete(*, post: Post) -> None:
    post.delete()


@transaction.atomic
def event_record(*, post: Post, event_type: str) -> dict:
    """Store the event in the transaction of the change, and broadcast it after commit.

    Raising last_seq with an UPDATE locks the liveblog's row until commit, so
    events of one liveblog get their seq in the order they commit. A rolled-back
    change takes its event and its broadcast with it.
    """
    Liveblog.objects.filter(pk=post.liveblog_id).update(last_seq=F("last_seq") + 1)
    seq = Liveblog.objects.values_list("last_seq", flat=True).get(pk=post.liveblog_id)
    frame = event_frame(event_type=event_type, post=post, seq=seq)
    Event.objects.create(liveblog_id=post.liveblog_id, seq=seq, frame=frame)
    Event.objects.filter(liveblog_id=post.liveblog_id, seq__lte=seq - EVENT_RETENTION).delete()
    group_message = {"type": "post.event", "seq": seq, "text": frame_encode(frame=frame)}
    group_send_on_commit(group=liveblog_group(liveblog_id=post.liveblog_id), message=group_message)
    return frame
