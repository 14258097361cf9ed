"""Settings of the conformance echo site: the sites' base settings and channel layer
choice, with nothing of its own to store."""

from realtime_common.cache import caches
from realtime_common.layers import channel_layers
from realtime_common.settings import *  # noqa: F403
from realtime_common.settings import DJANGO_APPS, REDIS_CHANNEL_LAYER, REDIS_URLS

# The site label of its metrics (realtime_common.metrics), as site_settings() gives each site.
SITE_NAME = "echo"
INSTALLED_APPS = [*DJANGO_APPS]
ROOT_URLCONF = "echo_site.urls"
ASGI_APPLICATION = "echo_site.asgi.application"

# Nothing is stored: /health/ runs its SELECT 1 on an in-memory database, and
# sessions (read by realtime_common.asgi.SocketLogin on every handshake) live in signed cookies.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

# Without REDIS_URL (how the suite starts it): the in-memory layer.
CHANNEL_LAYERS = channel_layers(prefix="echo", redis_urls=REDIS_URLS, kind=REDIS_CHANNEL_LAYER)
CACHES = caches(prefix="echo", redis_urls=REDIS_URLS)
