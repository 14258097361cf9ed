from django.urls import path

from . import views

app_name = "blog"
urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.liveblog_detail, name="liveblog"),
    path("<slug:slug>/fragments/", views.liveblog_fragments, name="fragments"),
    path("<slug:slug>/posts/", views.liveblog_snapshot, name="snapshot"),
    path("<slug:slug>/publish/", views.post_publish, name="publish"),
]
