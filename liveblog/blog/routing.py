from django.urls import path

from .consumers import LiveblogConsumer, LiveblogFragmentsConsumer

websocket_urlpatterns = [
    path("ws/liveblog/<slug:slug>/", LiveblogConsumer.as_asgi()),
    path("ws/liveblog/<slug:slug>/fragments/", LiveblogFragmentsConsumer.as_asgi()),
]
