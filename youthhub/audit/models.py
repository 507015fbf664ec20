"""The audit log: who read or changed what, when. Append-only.

An event names people (staff users) and records (conversation ids) but never content: no
message text, no note, no summary. Rows are never updated or deleted by the application
(`save` of an existing row and every delete raise), and on PostgreSQL a trigger refuses
UPDATE and DELETE outright (migration 0002), so not even a bug or a shell can rewrite history.
"""

from django.conf import settings
from django.db import models


class AppendOnly(Exception):
    pass


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("Audit events cannot be changed.")

    def delete(self):
        raise AppendOnly("Audit events cannot be deleted.")


class AuditEvent(models.Model):
    class ActorKind(models.TextChoices):
        STAFF = "staff", "Staff"
        YOUTH = "youth", "Youth"
        PARTNER = "partner", "Partner"
        SYSTEM = "system", "System"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    # The staff/partner user who acted; null for youth (anonymous) and the system.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True
    )
    # e.g. "transcript.read", "transfer.offer", "note.add"; see docs/privacy.md.
    action = models.CharField(max_length=40)
    # Not a foreign key: the event outlives the conversation (retention deletes that).
    conversation_id = models.UUIDField(null=True, blank=True, db_index=True)
    # Ids and codes only (never text): e.g. {"reason": "continuity", "read": "<uuid>"}.
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["actor", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnly("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("Audit events cannot be deleted.")
