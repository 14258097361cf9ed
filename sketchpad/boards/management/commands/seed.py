import math

from django.core.management.base import BaseCommand
from django.db import transaction

from boards.models import Board
from boards.services import stroke_store, thumbnail_render

SEED_AUTHOR = "seed"


def arc(*, center: tuple[float, float], radius: float, start: float, end: float, steps: int = 48) -> list:
    """Points along an ellipse arc (angles in turns) that looks round on the 4:3 board."""
    x, y = center
    return [
        [
            round(x + radius * 0.75 * math.cos(2 * math.pi * turn), 4),
            round(y + radius * math.sin(2 * math.pi * turn), 4),
        ]
        for turn in (start + (end - start) * step / steps for step in range(steps + 1))
    ]


# (slug, title, [(color, width, points), ...])
DEMO_BOARDS = [
    (
        "welcome",
        "Welcome",
        [
            ("#f2c94c", 12, arc(center=(0.5, 0.5), radius=0.35, start=0, end=1)),
            ("#1f2328", 28, [[0.42, 0.4]]),
            ("#1f2328", 28, [[0.58, 0.4]]),
            ("#cf222e", 10, arc(center=(0.5, 0.52), radius=0.18, start=0.1, end=0.4, steps=24)),
        ],
    ),
    ("sandbox", "Sandbox", []),
]


class Command(BaseCommand):
    help = "Create demo boards with their thumbnails. Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        for slug, title, strokes in DEMO_BOARDS:
            board, created = Board.objects.get_or_create(slug=slug, defaults={"title": title})
            if not created:
                continue
            for number, (color, width, points) in enumerate(strokes):
                stroke_store(
                    board_id=board.pk,
                    author=SEED_AUTHOR,
                    stroke_id=f"seed-{number}",
                    color=color,
                    width=width,
                    points=points,
                )
            # Rendered here too, so the gallery has them without a worker running.
            thumbnail_render(board_id=board.pk)
            self.stdout.write(f"Created board {slug} with {len(strokes)} strokes")
