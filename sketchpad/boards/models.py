from django.db import models
from django.urls import reverse


class Board(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)
    # The author id (services.author_ensure) of the browser that created it: it may clear it.
    creator = models.CharField(max_length=32, blank=True, editable=False)
    # What the board holds, kept with every change so that its caps cost no count.
    strokes_count = models.PositiveIntegerField(default=0, editable=False)
    points_count = models.PositiveIntegerField(default=0, editable=False)
    # The gallery's PNG, rendered by the thumbnail worker. Kept in the database
    # rather than as a media file so every process and replica serves the same one;
    # the version is in its URL, so browsers cache each rendering for good.
    thumbnail = models.BinaryField(default=b"", editable=False)
    thumbnail_version = models.PositiveIntegerField(default=0, editable=False)
    # Raised with every change to the board's strokes, in its transaction; the
    # thumbnail shows strokes_version thumbnail_of. A board whose thumbnail is
    # behind is rendered again by the worker's sweep, even if the request for
    # it was lost with a dead worker or Redis.
    strokes_version = models.PositiveBigIntegerField(default=0, editable=False)
    thumbnail_of = models.PositiveBigIntegerField(default=0, editable=False)

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("boards:board", kwargs={"slug": self.slug})


class Stroke(models.Model):
    """A finished stroke. Strokes being drawn live only in their author's connection."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="strokes")
    # Chosen by the drawing page; unique per author, so authors can't clash.
    client_id = models.CharField(max_length=64)
    # The public pseudonym of the browser that drew it (see services.author_ensure).
    author = models.CharField(max_length=32)
    color = models.CharField(max_length=7)
    # In thousandths of the board's width, so a stroke scales with the canvas.
    width = models.PositiveSmallIntegerField()
    # [[x, y], ...], each coordinate from 0 to 1 across the board.
    points = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The order they were finished in, which is the order they are drawn in.
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["board", "author", "client_id"], name="boards_stroke_unique_id"),
        ]

    def __str__(self):
        return f"{self.board_id}/{self.author}/{self.client_id}"
