import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Set Django up before importing anything that touches models, such as the consumers.
django_asgi_app = get_asgi_application()

from boards.consumers import ThumbnailConsumer  # noqa: E402
from boards.routing import websocket_urlpatterns  # noqa: E402
from realtime_common.asgi import asgi_application  # noqa: E402

application = asgi_application(
    http=django_asgi_app,
    websocket_urlpatterns=websocket_urlpatterns,
    # daphne never receives on this channel; `manage.py runworker --layer worker thumbnails` does.
    channels={settings.THUMBNAIL_CHANNEL: ThumbnailConsumer.as_asgi()},
)
