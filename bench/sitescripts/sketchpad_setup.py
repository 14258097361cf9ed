"""Boards for the sketchpad load test. Prints {"backend", "boards": [slug, ...]}."""

import argparse

from bench.sitescripts import django_start, line_print


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--boards", nargs="+", required=True)
    options = parser.parse_args()
    backend = django_start()
    from boards.models import Board

    for slug in options.boards:
        Board.objects.get_or_create(slug=slug, defaults={"title": slug})
    line_print(data={"backend": backend, "boards": options.boards})


if __name__ == "__main__":
    main()
