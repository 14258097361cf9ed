from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path

from rooms.views import LoginView, signup

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/signup/", signup, name="signup"),
    path("", include("realtime_common.urls")),
    path("", include("rooms.urls")),
]
