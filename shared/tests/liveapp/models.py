"""A model made live with step 1 of realtime_common.streams, and nothing else."""

from django.db import models

from realtime_common.streams import LiveModel


class Note(LiveModel):
    board = models.CharField(max_length=20)
    text = models.CharField(max_length=200)

    def live_stream(self) -> str:
        return f"notes-{self.board}"

    def live_frame(self, *, event: str, seq: int) -> dict:
        return {"type": f"note.{event}", "seq": seq, "id": self.pk, "text": self.text}
