from django.conf import settings
from django.db import models

from realtime_common.streams import LiveModel

from .wire import (
    CLIENT_ID_MAX_LENGTH,
    SLUG_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    message_deleted_frame,
    message_frame,
    room_group,
)


class Room(models.Model):
    slug = models.SlugField(unique=True, max_length=SLUG_MAX_LENGTH)
    title = models.CharField(max_length=100)
    staff_only = models.BooleanField(default=False, help_text="Only staff users may join.")

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title


class Message(LiveModel):
    """Every save and delete is an event of its room's stream (realtime_common.streams):
    numbered per room in commit order, broadcast after commit, replayed on reconnect."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages")
    text = models.TextField(max_length=TEXT_MAX_LENGTH)
    created = models.DateTimeField(auto_now_add=True)
    # The sending page's id of the message (chat/README.md: send): a resend finds it stored, and
    # the page matches the message frame to what it shows as pending. Null: it gave none.
    client_id = models.CharField(max_length=CLIENT_ID_MAX_LENGTH, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "id"])]
        constraints = [
            # The database, not a read before the write, keeps one message per id: of two
            # sends of one id at once, the second's INSERT waits for the first's commit and
            # fails (on Postgres as on SQLite), and it then answers with the first's message.
            # Nulls are never equal, so messages sent without an id are not limited.
            models.UniqueConstraint(fields=["user", "client_id"], name="rooms_message_user_client_id_unique")
        ]

    def __str__(self):
        return f"{self.user} in {self.room}: {self.text[:60]}"

    def live_stream(self) -> str:
        return room_group(room_id=self.room_id)

    def live_frame(self, *, event: str, seq: int) -> dict:
        if event == "deleted":
            return message_deleted_frame(message=self, seq=seq)
        return message_frame(message=self, seq=seq)
