from django.apps import AppConfig


class BlogConfig(AppConfig):
    name = "blog"
    label = "blog"
    verbose_name = "Liveblog"

    def ready(self):
        from . import receivers

        receivers.connect()
