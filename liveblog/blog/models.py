from django.db import models
from django.urls import reverse


class Liveblog(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The seq of this liveblog's newest event. Raised in the transaction that
    # records the event, so its row lock puts events in commit order.
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("blog:liveblog", kwargs={"slug": self.slug})


class Post(models.Model):
    liveblog = models.ForeignKey(Liveblog, on_delete=models.CASCADE, related_name="posts")
    body = models.TextField(help_text="Plain text. Blank lines make paragraphs; links become clickable.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["liveblog", "-created"])]

    def __str__(self):
        return self.body[:60]


class Event(models.Model):
    """A change to a liveblog's posts, exactly as sent to browsers, kept so that
    a page that reconnects can be sent what it missed."""

    liveblog = models.ForeignKey(Liveblog, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    frame = models.JSONField()

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["liveblog", "seq"], name="blog_event_unique_seq")]

    def __str__(self):
        return f"{self.liveblog_id}#{self.seq} {self.frame.get('type')}"
