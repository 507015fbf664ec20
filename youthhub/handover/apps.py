from django.apps import AppConfig


class HandoverConfig(AppConfig):
    name = "youthhub.handover"
    label = "handover"
    verbose_name = "Handover"
