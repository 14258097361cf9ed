from django.urls import path

from .consumers import BoardConsumer, GalleryConsumer

websocket_urlpatterns = [
    path("ws/sketchpad/", GalleryConsumer.as_asgi()),
    path("ws/sketchpad/<slug:slug>/", BoardConsumer.as_asgi()),
]
