"""Reading the audit log (admin, supervisors, tests)."""

from .models import AuditEvent


def events_for_conversation(conversation_id) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(conversation_id=conversation_id).select_related("actor"))
