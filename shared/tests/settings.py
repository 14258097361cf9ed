"""The least a Django project needs for realtime_common's own tests."""

import dj_database_url

from realtime_common.metrics import networks_parse

SECRET_KEY = "realtime-common-tests-only"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "realtime_common",
    "tests.liveapp",
]
# SQLite in memory, or the throwaway Postgres of TEST_DATABASE=postgres (realtime_common.testing.databases).
DATABASES = {"default": dj_database_url.config(default="sqlite://:memory:")}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
WEBSOCKET_ORIGINS = ["https://example.com"]
USE_TZ = True
ROOT_URLCONF = "realtime_common.urls"
WEBSOCKETS_PER_IP, WEBSOCKETS_PER_USER = 256, 32
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
# Tickets (realtime_common.tickets) are signed per site, and lead to this socket origin ("": the page's own).
SITE_NAME = "shared-tests"
SOCKET_ORIGIN = ""
# Metrics (realtime_common.metrics), readable from loopback, as a site's are by default.
METRICS_ENABLED = True
METRICS_ALLOWED_NETWORKS = networks_parse(["127.0.0.0/8", "::1/128"])
