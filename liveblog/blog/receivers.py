"""Signal receivers: a deleted liveblog takes its stream of events with it."""

from django.db.models.signals import post_delete

from realtime_common.streams import stream_delete

from .models import Liveblog
from .wire import liveblog_stream


def liveblog_deleted(sender, instance: Liveblog, **kwargs) -> None:
    stream_delete(stream=liveblog_stream(liveblog_id=instance.pk))


def connect() -> None:
    post_delete.connect(liveblog_deleted, sender=Liveblog, dispatch_uid="blog.liveblog_deleted")
