"""Settings of the sketchpad site; everything it shares with the other sites is in realtime_common."""

from pathlib import Path

from realtime_common.cache import caches
from realtime_common.layers import channel_layers
from realtime_common.settings import *  # noqa: F403
from realtime_common.settings import (
    DJANGO_APPS,
    REDIS_CHANNEL_LAYER,
    REDIS_URLS,
    cookie_names,
    sqlite_database,
    static_root,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Names its cookies, channel layer and cache keys, apart from the other sites'.
SITE_NAME = "sketchpad"

INSTALLED_APPS = [*DJANGO_APPS, "boards"]
ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = sqlite_database(BASE_DIR / "db.sqlite3")
STATIC_ROOT = static_root(BASE_DIR)
SESSION_COOKIE_NAME, CSRF_COOKIE_NAME = cookie_names(site=SITE_NAME)
# The thumbnail jobs go over their own layer ("worker"), which queues them in Redis.
CHANNEL_LAYERS = channel_layers(prefix=SITE_NAME, redis_urls=REDIS_URLS, kind=REDIS_CHANNEL_LAYER, workers=True)
# Shared by every process when Redis is configured: the thumbnail requests are coalesced in it.
CACHES = caches(prefix=SITE_NAME, redis_urls=REDIS_URLS)

# The channel the thumbnail worker listens on: `manage.py runworker --layer worker thumbnails`.
THUMBNAIL_CHANNEL = "thumbnails"
