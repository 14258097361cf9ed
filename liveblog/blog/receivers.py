"""Signal receivers: a deleted liveblog takes its stream of events with it."""

from django.db.models.signals import pre_delete

from realtime_common.streams import stream_delete

from .models import Liveblog
from .wire import liveblog_stream


def liveblog_deleting(sender, instance: Liveblog, **kwargs) -> None:
    # Before the cascade deletes the liveblog's posts, in its transaction: they then find
    # no stream to write their deleted events to, and its open pages are told it is gone.
    stream_delete(stream=liveblog_stream(liveblog_id=instance.pk))


def connect() -> None:
    pre_delete.connect(liveblog_deleting, sender=Liveblog, dispatch_uid="blog.liveblog_deleting")
