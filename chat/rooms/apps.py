from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    label = "rooms"
    verbose_name = "Chat rooms"

    def ready(self):
        from . import receivers

        receivers.connect()
