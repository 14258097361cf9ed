"""The sketchpad protocol in one place: the frames a page may send, checked, and
the frames it receives. Documented in sketchpad/README.md."""

import math
import re
from dataclasses import dataclass

from django.urls import reverse

from realtime_common.consumers import ClientError

MAX_BATCH_POINTS = 256
# What one board may hold. A point takes at most 16 bytes on the wire and a
# stroke's other fields about 100, so a full board's snapshot stays under 1 MiB,
# the largest frame the site sends.
BOARD_MAX_STROKES = 2_000
BOARD_MAX_POINTS = 40_000
# New boards per client address and hour.
BOARD_CREATE_LIMIT = 20
MIN_WIDTH, MAX_WIDTH = 1, 64
# Four decimals place a point within a tenth of a pixel on a 1000-pixel canvas.
COORDINATE_DECIMALS = 4
STROKE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
COLOR = re.compile(r"#[0-9a-fA-F]{6}")

GALLERY_GROUP = "gallery"


@dataclass(frozen=True)
class Draw:
    stroke: str
    color: str
    width: int
    points: list[list[float]]
    done: bool


@dataclass(frozen=True)
class Undo:
    stroke: str


@dataclass(frozen=True)
class Clear:
    pass


@dataclass(frozen=True)
class Cursor:
    """Where the page's pointer is on the board; both None: it left the board."""

    x: float | None
    y: float | None


def frame_parse(content: dict) -> Draw | Undo | Clear | Cursor:
    """A page's frame, checked and normalised, or ClientError."""
    match content.get("type"):
        case "draw":
            return Draw(
                stroke=stroke_id_parse(content.get("stroke")),
                color=color_parse(content.get("color")),
                width=width_parse(content.get("width")),
                points=points_parse(content.get("points")),
                done=done_parse(content.get("done")),
            )
        case "undo":
            return Undo(stroke=stroke_id_parse(content.get("stroke")))
        case "clear":
            return Clear()
        case "cursor":
            return cursor_parse(content)
        case _:
            raise ClientError("unknown_type", 'The "type" must be "draw", "undo", "clear" or "cursor".')


def stroke_id_parse(value) -> str:
    if not isinstance(value, str) or not STROKE_ID.fullmatch(value):
        raise ClientError("invalid_frame", '"stroke" must be 1 to 64 letters, digits, "-" or "_".')
    return value


def color_parse(value) -> str:
    if not isinstance(value, str) or not COLOR.fullmatch(value):
        raise ClientError("invalid_frame", '"color" must be "#rrggbb".')
    return value.lower()


def width_parse(value) -> int:
    # bool is an int in Python, but true is not a width.
    if type(value) is not int or not MIN_WIDTH <= value <= MAX_WIDTH:
        raise ClientError("invalid_frame", f'"width" must be a whole number from {MIN_WIDTH} to {MAX_WIDTH}.')
    return value


def done_parse(value) -> bool:
    if not isinstance(value, bool):
        raise ClientError("invalid_frame", '"done" must be true or false.')
    return value


def points_parse(value) -> list[list[float]]:
    if not isinstance(value, list):
        raise ClientError("invalid_frame", '"points" must be a list of [x, y] pairs.')
    if len(value) > MAX_BATCH_POINTS:
        raise ClientError("too_many_points", f"Send at most {MAX_BATCH_POINTS} points a frame.")
    points = []
    for point in value:
        if not (isinstance(point, list) and len(point) == 2 and all(map(is_number, point))):
            raise ClientError("invalid_frame", '"points" must be a list of [x, y] pairs of numbers.')
        if not all(0 <= coordinate <= 1 for coordinate in point):
            raise ClientError("out_of_bounds", "Coordinates go from 0 to 1 across the board.")
        points.append([round(coordinate, COORDINATE_DECIMALS) for coordinate in point])
    return points


def cursor_parse(content: dict) -> Cursor:
    if "x" not in content or "y" not in content:
        raise ClientError("invalid_frame", 'A cursor frame has "x" and "y".')
    x, y = content["x"], content["y"]
    if x is None and y is None:
        return Cursor(x=None, y=None)
    if not (is_number(x) and is_number(y) and 0 <= x <= 1 and 0 <= y <= 1):
        raise ClientError("out_of_bounds", '"x" and "y" are numbers from 0 to 1 across the board, or both null.')
    return Cursor(x=round(x, COORDINATE_DECIMALS), y=round(y, COORDINATE_DECIMALS))


def is_number(value) -> bool:
    # Not bool; not NaN or Infinity, which Python's JSON parser accepts.
    return type(value) is int or (type(value) is float and math.isfinite(value))


def stroke_data(*, stroke_id: str, author: str, color: str, width: int, points: list) -> dict:
    return {"stroke": stroke_id, "author": author, "color": color, "width": width, "points": points}


def snapshot_frame(*, strokes: list[dict], you: str) -> dict:
    return {"type": "snapshot", "you": you, "strokes": strokes}


def draw_frame(*, draw: Draw, author: str) -> dict:
    return {
        "type": "draw",
        **stroke_data(stroke_id=draw.stroke, author=author, color=draw.color, width=draw.width, points=draw.points),
        "done": draw.done,
    }


def erase_frame(*, stroke_id: str, author: str) -> dict:
    return {"type": "erase", "stroke": stroke_id, "author": author}


CLEAR_FRAME = {"type": "clear"}


def cursor_frame(*, cursor_id: str, author: str, name: str, color: str, x: float | None, y: float | None) -> dict:
    """Another page's pointer, ``id`` its socket's (an author's tabs each have one); x and y
    null: it is gone (left the board, idle, or closed)."""
    return {"type": "cursor", "id": cursor_id, "author": author, "name": name, "color": color, "x": x, "y": y}


def thumbnail_url(*, slug: str, version: int) -> str | None:
    """None until the worker has rendered the board once: the gallery shows a placeholder."""
    if not version:
        return None
    return f"{reverse('boards:thumbnail', kwargs={'slug': slug})}?v={version}"


def thumbnails_frame(*, boards: dict[str, str | None]) -> dict:
    """{"<slug>": "<thumbnail URL>" or None, ...}: every board on connect, one after each rendering."""
    return {"type": "thumbnails", "boards": boards}


def board_group(*, board_id: int) -> str:
    return f"board-{board_id}"
