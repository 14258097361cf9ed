from django.urls import path

from . import views

app_name = "boards"
urlpatterns = [
    path("", views.gallery, name="gallery"),
    path("<slug:slug>/", views.board_detail, name="board"),
    path("<slug:slug>/thumbnail.png", views.board_thumbnail, name="thumbnail"),
]
