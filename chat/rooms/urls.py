from django.urls import path

from . import views

app_name = "rooms"
urlpatterns = [
    path("", views.index, name="index"),
    path("chat/", views.chat, name="chat"),
    path("ws-ticket/", views.ws_ticket, name="ws_ticket"),
]
