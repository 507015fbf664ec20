from django.apps import AppConfig


class YouthhubConfig(AppConfig):
    """The project package as an app: the retention command (`manage.py purge`) and the
    deployment checks of youthhub/security.py (`manage.py check --deploy`)."""

    name = "youthhub"
    verbose_name = "youthhub"

    def ready(self):
        from . import security  # noqa: F401  (registers the deploy checks)
