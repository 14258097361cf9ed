"""Signal receivers: they make any save or delete of a Post an event, wherever it happens."""

from django.db.models.signals import post_delete, post_save

from .models import Liveblog, Post
from .services import event_record


def post_saved(sender, instance: Post, created: bool, raw: bool, **kwargs) -> None:
    if raw:  # loaddata: fixtures are not news
        return
    event_record(post=instance, event_type="post.created" if created else "post.updated")


def post_deleted(sender, instance: Post, origin=None, **kwargs) -> None:
    if isinstance(origin, Liveblog):  # the whole liveblog goes, with its events
        return
    event_record(post=instance, event_type="post.deleted")


def connect() -> None:
    post_save.connect(post_saved, sender=Post, dispatch_uid="blog.post_saved")
    post_delete.connect(post_deleted, sender=Post, dispatch_uid="blog.post_deleted")
