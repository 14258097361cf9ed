"""Writes. Every change to a board's strokes asks the thumbnail worker for a new
rendering once it is committed, whoever makes it."""

import logging
import secrets
import time

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.text import slugify

from realtime_common.broadcast import group_send_logged
from realtime_common.consumers import relay_message
from realtime_common.layers import WORKER_LAYER
from realtime_common.metrics import site_inc, site_observe
from realtime_common.throttle import window_allow

from .metrics import STROKES_STORED, THUMBNAIL_RENDER_SECONDS, THUMBNAILS_RENDERED
from .models import Board, Stroke
from .render import strokes_png
from .selectors import AUTHOR_SESSION_KEY, stroke_list
from .wire import (
    BOARD_CREATE_LIMIT,
    BOARD_MAX_POINTS,
    BOARD_MAX_STROKES,
    GALLERY_GROUP,
    thumbnail_url,
    thumbnails_frame,
)

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = (320, 240)
# As long as the channel layer keeps an unreceived message: a request lost with
# a stopped worker holds the board's next one back no longer than this.
THUMBNAIL_PENDING_TIMEOUT = 60
# Boards rendered per sweep of the worker, so one sweep never holds it for long.
THUMBNAIL_CATCH_UP_BATCH = 20


def author_new() -> str:
    return secrets.token_urlsafe(12)


def author_ensure(*, session) -> str:
    """This browser's author id, kept in its session: it decides whose strokes a
    page may undo. It goes out with every stroke, so it is a random pseudonym,
    never the session key."""
    return session.setdefault(AUTHOR_SESSION_KEY, author_new())


class BoardFull(Exception):
    """The board holds BOARD_MAX_STROKES strokes or BOARD_MAX_POINTS points already."""


def board_create_allow(*, client: str) -> bool:
    """Count one new board from this address; False once over BOARD_CREATE_LIMIT an hour."""
    return window_allow(key=f"boards:create:{client}", limit=BOARD_CREATE_LIMIT, seconds=3600)


def board_create(*, title: str, creator: str) -> Board:
    # The random suffix keeps slugs apart, and away from the site's own paths (admin/, health/).
    slug = f"{slugify(title)[:40].strip('-') or 'board'}-{secrets.token_hex(3)}"
    return Board.objects.create(slug=slug, title=title, creator=creator)


def board_lock(*, board_id: int) -> bool:
    """Lock the board's row until the transaction ends; False if there is no such board.

    Every change to a board's strokes locks the board's row first (with this, or with
    the UPDATE of its counts): changes to one board queue up there, each then reads
    what the last committed, they take their locks in one order (no deadlock), and the
    counts stay those of the strokes. On SQLite, its one write lock does the same."""
    return Board.objects.select_for_update().filter(pk=board_id).exists()


def stroke_store(*, board_id: int, author: str, stroke_id: str, color: str, width: int, points: list) -> Stroke | None:
    """None when it cannot be stored: the board was deleted meanwhile, or the id was taken;
    BoardFull when it would take the board over its caps."""
    try:
        with transaction.atomic():
            # The caps are checked by the UPDATE that counts the stroke in (and locks
            # the board), so two strokes ending at once cannot both take the last room.
            counted = Board.objects.filter(
                pk=board_id, strokes_count__lt=BOARD_MAX_STROKES, points_count__lte=BOARD_MAX_POINTS - len(points)
            ).update(strokes_count=F("strokes_count") + 1, points_count=F("points_count") + len(points))
            if not counted:
                if Board.objects.filter(pk=board_id).exists():
                    raise BoardFull
                return None
            stroke = Stroke.objects.create(
                board_id=board_id, author=author, client_id=stroke_id, color=color, width=width, points=points
            )
            board_changed(board_id=board_id)
    except IntegrityError:
        return None
    site_inc(STROKES_STORED)
    return stroke


@transaction.atomic
def stroke_delete(*, board_id: int, author: str, stroke_id: str) -> bool:
    """Delete one of the author's strokes; False if the author has none with this id."""
    # Locked first: the same undo from two tabs at once finds the stroke once, and counts it out once.
    if not board_lock(board_id=board_id):
        return False
    stroke = Stroke.objects.filter(board_id=board_id, author=author, client_id=stroke_id).first()
    if stroke is None:
        return False
    stroke.delete()
    Board.objects.filter(pk=board_id).update(
        strokes_count=F("strokes_count") - 1, points_count=F("points_count") - len(stroke.points)
    )
    board_changed(board_id=board_id)
    return True


@transaction.atomic
def boards_delete(*, board_ids: list[int]) -> None:
    """Delete the boards and their strokes (the admin's delete). Each board's row is
    locked first, as every change to its strokes does (board_lock), and in one order:
    an undo or a clear of the board at the same moment goes before or after, never
    halfway. Unlocked, the cascade would lock the strokes first, then wait for the
    board's row that the undo holds while it waits for a stroke: a deadlock on Postgres."""
    for board_id in sorted(board_ids):
        board_lock(board_id=board_id)
    Board.objects.filter(pk__in=board_ids).delete()


@transaction.atomic
def board_clear(*, board_id: int) -> None:
    # The counts first, which locks the board: a stroke ending meanwhile waits, then
    # counts in from zero. Deleting first, one committed between the DELETE and the
    # UPDATE would stay on the board, uncounted.
    Board.objects.filter(pk=board_id).update(strokes_count=0, points_count=0)
    Stroke.objects.filter(board_id=board_id).delete()
    board_changed(board_id=board_id)


def board_changed(*, board_id: int) -> None:
    """Count a change to the board's strokes, and ask for a rendering once it is committed."""
    Board.objects.filter(pk=board_id).update(strokes_version=F("strokes_version") + 1)
    thumbnail_request_on_commit(board_id=board_id)


def thumbnail_request_on_commit(*, board_id: int) -> None:
    # robust: the strokes are saved; a channel layer outage costs a stale thumbnail, not the write.
    transaction.on_commit(lambda: thumbnail_request(board_id=board_id), robust=True)


def thumbnail_pending_key(*, board_id: int) -> str:
    return f"thumbnail-pending-{board_id}"


def thumbnail_request(*, board_id: int) -> None:
    """Ask the worker to render the board, unless a request is queued already and
    not begun: a burst of strokes costs one rendering, not one each."""
    key = thumbnail_pending_key(board_id=board_id)
    if not cache.add(key, True, timeout=THUMBNAIL_PENDING_TIMEOUT):
        return
    message = {"type": "thumbnail.render", "board": board_id}
    try:
        async_to_sync(get_channel_layer(WORKER_LAYER).send)(settings.THUMBNAIL_CHANNEL, message)
    except ChannelFull:
        cache.delete(key)
        logger.warning(
            "Thumbnails are not being rendered: is `manage.py runworker --layer %s %s` running?",
            WORKER_LAYER,
            settings.THUMBNAIL_CHANNEL,
        )


def thumbnail_render(*, board_id: int) -> Board | None:
    """Draw the board as it is now and store the PNG; None if the board is gone."""
    # The version first: a stroke stored between the two reads is drawn but not
    # counted, which costs one more rendering, never a stale thumbnail.
    started = time.perf_counter()
    strokes_version = Board.objects.filter(pk=board_id).values_list("strokes_version", flat=True).first()
    if strokes_version is None:
        return None
    png = strokes_png(strokes=stroke_list(board_id=board_id), size=THUMBNAIL_SIZE)
    with transaction.atomic():
        updated = Board.objects.filter(pk=board_id).update(
            thumbnail=png, thumbnail_version=F("thumbnail_version") + 1, thumbnail_of=strokes_version
        )
        board = Board.objects.defer("thumbnail").get(pk=board_id) if updated else None
    if board is not None:
        site_inc(THUMBNAILS_RENDERED)
        site_observe(THUMBNAIL_RENDER_SECONDS, time.perf_counter() - started)
    return board


def thumbnails_catch_up() -> int:
    """Render every board whose thumbnail is behind its strokes (its request was
    lost: a dead worker, a Redis outage, an expired message); how many were."""
    stale = Board.objects.filter(thumbnail_of__lt=F("strokes_version")).order_by("pk").values_list("pk", flat=True)
    board_ids = list(stale[:THUMBNAIL_CATCH_UP_BATCH])
    for board_id in board_ids:
        thumbnail_refresh(board_id=board_id)
    return len(board_ids)


def thumbnail_refresh(*, board_id: int) -> None:
    """The worker's job: render the board and show the result in every open gallery."""
    # Cleared before the strokes are read: one finished during the rendering asks for another.
    cache.delete(thumbnail_pending_key(board_id=board_id))
    board = thumbnail_render(board_id=board_id)
    if board is None:
        return
    frame = thumbnails_frame(boards={board.slug: thumbnail_url(slug=board.slug, version=board.thumbnail_version)})
    # Stored already: while Redis is away galleries hear of it when it is back (GalleryConsumer.layer_reconnected).
    async_to_sync(group_send_logged)(group=GALLERY_GROUP, message=relay_message(frame=frame))
