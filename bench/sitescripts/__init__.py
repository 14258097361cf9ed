"""Scripts that run inside a site's Django project (cwd = the site's folder, its env, and this
repo on PYTHONPATH): ``python -m bench.sitescripts.<name>``. They print JSON lines."""

import json
import os
import sys


def django_start() -> str:
    """django.setup() for the site in the current folder; the channel layer backend it uses."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    return settings.CHANNEL_LAYERS["default"]["BACKEND"]


def line_print(*, data: dict) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
