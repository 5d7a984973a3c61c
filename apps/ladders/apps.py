from django.apps import AppConfig


class LaddersConfig(AppConfig):
    name = "apps.ladders"
    label = "ladders"
    verbose_name = "Ladders"
