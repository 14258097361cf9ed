from django.db import models
from django.urls import reverse

from realtime_common.streams import LiveModel

from .wire import liveblog_stream, post_frame


class Liveblog(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("blog:liveblog", kwargs={"slug": self.slug})


class Post(LiveModel):
    """Every save and delete, whoever makes it, is an event of its liveblog's stream (realtime_common.streams)."""

    liveblog = models.ForeignKey(Liveblog, on_delete=models.CASCADE, related_name="posts")
    # Checked by the admin and the publish form: a post's frame stays well under 256 KiB.
    body = models.TextField(
        max_length=10_000, help_text="Plain text. Blank lines make paragraphs; links become clickable."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["liveblog", "-created"])]

    def __str__(self):
        return self.body[:60]

    def live_stream(self) -> str:
        return liveblog_stream(liveblog_id=self.liveblog_id)

    def live_frame(self, *, event: str, seq: int) -> dict:
        return post_frame(post=self, event=event, seq=seq)
