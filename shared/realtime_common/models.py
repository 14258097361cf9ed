from django.db import models


class Stream(models.Model):
    """A numbered sequence of changes that pages follow live, e.g. one liveblog's posts."""

    name = models.CharField(max_length=100, unique=True)
    # The seq of the newest event. Raised in the transaction that records the
    # event, so its row lock numbers a stream's events in commit order.
    last_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.name} (#{self.last_seq})"


class StreamEvent(models.Model):
    """A change, exactly as pages receive it, kept so that a page that reconnects gets what it missed."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    frame = models.JSONField()
    # The row the event is about ("<app>.<model>:<pk>", streams.live_row_key): deleting the row
    # finds its events by this index and scrubs them, whichever stream they are in.
    row = models.CharField(max_length=255, default="")

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["stream", "seq"], name="realtime_event_unique_seq")]
        # One plain index (db_index would add a second, for LIKE, on Postgres): every save writes it.
        indexes = [models.Index(fields=["row"], name="realtime_event_row")]

    def __str__(self):
        return f"{self.stream_id}#{self.seq} {self.frame.get('type')}"
