from django.urls import path

from .consumers import ChatConsumer

# Where a page opens its socket; a ticket's URL leads there too (views.ws_ticket).
SOCKET_PATH = "/ws/chat/"

websocket_urlpatterns = [
    path(SOCKET_PATH.removeprefix("/"), ChatConsumer.as_asgi()),
]
