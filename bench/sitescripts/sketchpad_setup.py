"""Boards for the sketchpad load test, empty: a board holds at most BOARD_MAX_STROKES
strokes and BOARD_MAX_POINTS points, which a step of 20 drawers fills in seconds, so
every step starts on cleared boards. Prints {"backend", "boards": [slug, ...]}."""

import argparse

from bench.sitescripts import django_start, line_print


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--boards", nargs="+", required=True)
    options = parser.parse_args()
    backend = django_start()
    from boards.models import Board
    from boards.services import board_clear

    for slug in options.boards:
        board, _ = Board.objects.get_or_create(slug=slug, defaults={"title": slug})
        board_clear(board_id=board.pk)
    line_print(data={"backend": backend, "boards": options.boards})


if __name__ == "__main__":
    main()
