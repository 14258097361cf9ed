from django.urls import include, path

urlpatterns = [
    # GET /health/, which the suite polls until daphne is ready.
    path("", include("realtime_common.urls")),
]
