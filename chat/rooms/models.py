from django.conf import settings
from django.db import models

# Longer texts are refused with an error frame, before they reach the database.
TEXT_MAX_LENGTH = 2000


class Room(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=100)
    staff_only = models.BooleanField(default=False, help_text="Only staff users may join.")

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages")
    text = models.TextField(max_length=TEXT_MAX_LENGTH)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        # History is "the newest 50" or "everything after this id", per room.
        indexes = [models.Index(fields=["room", "id"])]

    def __str__(self):
        return f"{self.user} in {self.room}: {self.text[:60]}"
