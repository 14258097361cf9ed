"""The least a Django project needs for realtime_common's own tests."""

SECRET_KEY = "realtime-common-tests-only"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "channels", "realtime_common", "tests.liveapp"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
WEBSOCKET_ORIGINS = ["https://example.com"]
USE_TZ = True
ROOT_URLCONF = "realtime_common.urls"
WEBSOCKETS_PER_IP, WEBSOCKETS_PER_USER = 256, 32
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
