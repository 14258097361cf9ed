"""Messages are events of their room's stream now (realtime_common.streams): give
the rooms' newest messages their events, numbered in id order, so the history
of a room survives the change."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import migrations

# Post-migration messages are kept as events up to Message.live_retention.
RETENTION = 500


def events_create(apps, schema_editor):
    Room = apps.get_model("rooms", "Room")
    Message = apps.get_model("rooms", "Message")
    Stream = apps.get_model("realtime_common", "Stream")
    StreamEvent = apps.get_model("realtime_common", "StreamEvent")
    # Historical models have no USERNAME_FIELD: the real model's says which field it is.
    username_field = get_user_model().USERNAME_FIELD
    for room in Room.objects.all():
        messages = Message.objects.filter(room=room).select_related("user").order_by("id")
        total = messages.count()
        if not total:
            continue
        stream = Stream.objects.create(name=f"room-{room.pk}", last_seq=total)
        first_kept = max(0, total - RETENTION)
        StreamEvent.objects.bulk_create(
            StreamEvent(
                stream=stream,
                seq=first_kept + number,
                frame={
                    "type": "message",
                    "room": room.slug,
                    "seq": first_kept + number,
                    "id": message.pk,
                    "user": getattr(message.user, username_field),
                    "text": message.text,
                    "created": message.created.isoformat(),
                },
            )
            for number, message in enumerate(messages[first_kept:], start=1)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0001_initial"),
        ("realtime_common", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(events_create, migrations.RunPython.noop)]
