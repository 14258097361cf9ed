from django.apps import AppConfig


class LiveappConfig(AppConfig):
    name = "tests.liveapp"
    label = "liveapp"

    def ready(self):
        from . import receivers

        receivers.connect()
