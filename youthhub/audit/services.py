"""Writing the audit log: one call per audited step, inside the step's own transaction."""

from .models import AuditEvent


def audit_record(
    action: str, *, actor=None, actor_kind: str | None = None, conversation_id=None, **detail
) -> AuditEvent:
    """Append one event. `actor` is a staff/partner user (None for youth and the system);
    `detail` holds ids and codes only, never content."""
    if actor_kind is None:
        actor_kind = (
            AuditEvent.ActorKind.STAFF if actor is not None else AuditEvent.ActorKind.SYSTEM
        )
    clean = {key: (str(value) if value is not None else None) for key, value in detail.items()}
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_kind=actor_kind,
        conversation_id=conversation_id,
        detail=clean,
    )
