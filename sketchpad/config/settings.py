"""Settings of the sketchpad site; everything it shares with the other sites is in realtime_common."""

from pathlib import Path

from realtime_common.cache import caches
from realtime_common.layers import channel_layers
from realtime_common.settings import *  # noqa: F403
from realtime_common.settings import DJANGO_APPS, REDIS_CHANNEL_LAYER, REDIS_URLS, sqlite_database, static_root

BASE_DIR = Path(__file__).resolve().parent.parent

INSTALLED_APPS = [*DJANGO_APPS, "boards"]
ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = sqlite_database(BASE_DIR / "db.sqlite3")
STATIC_ROOT = static_root(BASE_DIR)
# The thumbnail jobs go over their own layer ("worker"), which queues them in Redis.
CHANNEL_LAYERS = channel_layers(prefix="sketchpad", redis_urls=REDIS_URLS, kind=REDIS_CHANNEL_LAYER, workers=True)
# Shared by every process when Redis is configured: the thumbnail requests are coalesced in it.
CACHES = caches(prefix="sketchpad", redis_urls=REDIS_URLS)

# The channel the thumbnail worker listens on: `manage.py runworker --layer worker thumbnails`.
THUMBNAIL_CHANNEL = "thumbnails"
