from django.apps import AppConfig


class StatsConfig(AppConfig):
    name = "youthhub.stats"
    label = "stats"
    verbose_name = "Statistics"
