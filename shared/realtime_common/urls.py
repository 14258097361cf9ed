from django.urls import path

from .favicon import favicon_redirect
from .health import health

urlpatterns = [
    path("health/", health, name="health"),
    path("favicon.ico", favicon_redirect, name="favicon"),
]
