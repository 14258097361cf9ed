from django.apps import AppConfig


class BoardsConfig(AppConfig):
    name = "boards"
    label = "boards"
    verbose_name = "Sketchpad"
