"""The strokes one connection is drawing: their points are kept until the page
says the stroke is done, and only then stored."""

from dataclasses import dataclass, field

from realtime_common.consumers import ClientError

from .wire import Draw

# Enough for several fingers at once; each unfinished stroke holds memory until done.
MAX_STROKES_IN_PROGRESS = 10
# About a minute of continuous drawing; the page starts a new stroke when one is this long.
MAX_STROKE_POINTS = 10_000
# All the strokes one socket has in progress, which live in this process's memory until done.
MAX_POINTS_IN_PROGRESS = 20_000


@dataclass
class StrokeInProgress:
    color: str
    width: int
    points: list[list[float]] = field(default_factory=list)


class Drawing:
    def __init__(self):
        self.strokes: dict[str, StrokeInProgress] = {}

    def __contains__(self, stroke_id: str) -> bool:
        return stroke_id in self.strokes

    def add(self, draw: Draw) -> StrokeInProgress:
        """Add a batch to its stroke, beginning the stroke if it is new; ClientError if the batch breaks a rule."""
        stroke = self.strokes.get(draw.stroke)
        if stroke is None:
            if len(self.strokes) >= MAX_STROKES_IN_PROGRESS:
                raise ClientError(
                    "too_many_strokes", f"Finish a stroke first: at most {MAX_STROKES_IN_PROGRESS} at once."
                )
            if not draw.points:
                raise ClientError("invalid_frame", "A stroke begins with at least one point.")
            stroke = StrokeInProgress(color=draw.color, width=draw.width)
        elif (stroke.color, stroke.width) != (draw.color, draw.width):
            raise ClientError("invalid_frame", "A stroke keeps the colour and width it began with.")
        if len(stroke.points) + len(draw.points) > MAX_STROKE_POINTS:
            raise ClientError("stroke_too_long", f"A stroke has at most {MAX_STROKE_POINTS} points: begin another.")
        if self.points_in_progress() + len(draw.points) > MAX_POINTS_IN_PROGRESS:
            detail = f"At most {MAX_POINTS_IN_PROGRESS} points in strokes not yet finished: finish some first."
            raise ClientError("too_much_in_progress", detail)
        self.strokes[draw.stroke] = stroke
        stroke.points.extend(draw.points)
        return stroke

    def points_in_progress(self) -> int:
        return sum(len(stroke.points) for stroke in self.strokes.values())

    def finish(self, stroke_id: str) -> StrokeInProgress:
        return self.strokes.pop(stroke_id)

    def abandon(self) -> list[str]:
        """Forget every unfinished stroke (the page went away); returns their ids."""
        stroke_ids = list(self.strokes)
        self.strokes.clear()
        return stroke_ids
