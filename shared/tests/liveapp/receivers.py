"""A deleted board takes its stream of events with it."""

from django.db.models.signals import pre_delete

from realtime_common.streams import stream_delete

from .models import Board


def board_deleting(sender, instance: Board, **kwargs) -> None:
    # Before the cascade deletes the board's cards, in its transaction: they then find
    # no stream to write their deleted events to, and its open pages are told it is gone.
    stream_delete(stream=f"cards-{instance.pk}")


def connect() -> None:
    pre_delete.connect(board_deleting, sender=Board, dispatch_uid="liveapp.board_deleting")
