from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "youthhub.staff"
    label = "staff"
    verbose_name = "Staff"
