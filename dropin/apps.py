from django.apps import AppConfig


class DropinConfig(AppConfig):
    name = "dropin"
    verbose_name = "Drop-in and queue"
