from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "youthhub.audit"
    label = "audit"
    verbose_name = "Audit log"
