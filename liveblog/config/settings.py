"""Settings of the liveblog site; everything it shares with the other sites is in realtime_common."""

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
SITE_NAME = "liveblog"

INSTALLED_APPS = [*DJANGO_APPS, "blog"]
ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = sqlite_database(BASE_DIR / "db.sqlite3")
STATIC_ROOT = static_root(BASE_DIR)
SESSION_COOKIE_NAME, CSRF_COOKIE_NAME = cookie_names(site=SITE_NAME)
CHANNEL_LAYERS = channel_layers(prefix=SITE_NAME, redis_urls=REDIS_URLS, kind=REDIS_CHANNEL_LAYER)
CACHES = caches(prefix=SITE_NAME, redis_urls=REDIS_URLS)

LOGIN_URL = "admin:login"
