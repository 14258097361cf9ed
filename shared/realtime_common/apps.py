from django.apps import AppConfig


class RealtimeCommonConfig(AppConfig):
    name = "realtime_common"
    label = "realtime_common"
    verbose_name = "Real-time streams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks, database, streams  # noqa: F401 - importing checks registers them

        database.receivers_connect()
        streams.receivers_connect()
