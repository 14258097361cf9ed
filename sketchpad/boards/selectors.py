"""Reads."""

from django.db.models import QuerySet

from .models import Board, Stroke
from .wire import BOARD_MAX_POINTS, BOARD_MAX_STROKES, stroke_data, thumbnail_url

# Boards on the gallery page and in its socket's first frame, newest first.
GALLERY_SIZE = 60
AUTHOR_SESSION_KEY = "sketchpad_author"


def board_get(*, slug: str) -> Board | None:
    return Board.objects.filter(slug=slug).defer("thumbnail").first()


def board_list() -> QuerySet[Board]:
    return Board.objects.defer("thumbnail").order_by("-created", "-id")[:GALLERY_SIZE]


def thumbnail_get(*, slug: str) -> tuple[bytes, int] | None:
    """The board's PNG and its version; None before its first rendering."""
    found = Board.objects.filter(slug=slug, thumbnail_version__gt=0).values_list("thumbnail", "thumbnail_version")
    row = found.first()
    return (bytes(row[0]), row[1]) if row else None


def thumbnail_urls() -> dict[str, str | None]:
    return {board.slug: thumbnail_url(slug=board.slug, version=board.thumbnail_version) for board in board_list()}


def stroke_list(*, board_id: int) -> list[dict]:
    """Every finished stroke of the board, in the order they were finished."""
    strokes = Stroke.objects.filter(board_id=board_id).values_list("client_id", "author", "color", "width", "points")
    return [
        stroke_data(stroke_id=stroke_id, author=author, color=color, width=width, points=points)
        for stroke_id, author, color, width, points in strokes
    ]


def board_has_room(*, board_id: int) -> bool:
    """Can the board take another stroke? (stroke_store checks again, exactly, when it ends.)"""
    return Board.objects.filter(
        pk=board_id, strokes_count__lt=BOARD_MAX_STROKES, points_count__lt=BOARD_MAX_POINTS
    ).exists()


def stroke_exists(*, board_id: int, author: str, stroke_id: str) -> bool:
    return Stroke.objects.filter(board_id=board_id, author=author, client_id=stroke_id).exists()


def author_get(*, session) -> str | None:
    """The pseudonym the board page stored in this browser's session, if any."""
    return session.get(AUTHOR_SESSION_KEY) if session is not None else None
