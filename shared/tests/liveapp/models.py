"""Models made live with step 1 of realtime_common.streams. Note needs nothing else; a
Card's stream belongs to its Board, which deletes it with itself (receivers.py)."""

from django.db import models

from realtime_common.streams import LiveModel


class Note(LiveModel):
    board = models.CharField(max_length=20)
    text = models.CharField(max_length=200)

    def live_stream(self) -> str:
        return f"notes-{self.board}"

    def live_frame(self, *, event: str, seq: int) -> dict:
        return {"type": f"note.{event}", "seq": seq, "id": self.pk, "text": self.text}


class Board(models.Model):
    """A parent that owns a stream, as a chat room or a liveblog: deleting it deletes the
    stream (receivers.py)."""

    name = models.CharField(max_length=20)


class Author(models.Model):
    """A parent that owns no stream, as a chat message's user."""

    name = models.CharField(max_length=20)

    def __str__(self):
        return self.name


class Card(LiveModel):
    """A row with two parents, as the chat's messages (a room, a user): its stream is its
    board's, and deleting its author, which owns no stream, deletes it too."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    text = models.CharField(max_length=200)

    def live_stream(self) -> str:
        return f"cards-{self.board_id}"

    def live_frame(self, *, event: str, seq: int) -> dict:
        frame = {"type": f"card.{event}", "board": self.board.name, "seq": seq, "id": self.pk}
        return frame if event == "deleted" else {**frame, "text": self.text}
