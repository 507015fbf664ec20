"""Recomputing the `Count` cells from the raw rows still stored.

Only for hours whose conversations are all still stored: the retention window. Cells of older
hours hold conversations retention has deleted, so they are never touched; a rebuild from an
earlier `since` would silently lose those counts.

What a cell of hour H holds, and so what a rebuild from `since` (rounded up to a whole hour)
needs:

- every cell except active minutes sits in the hour the conversation arrived (`created_at`),
  feedback included: closed conversations created at or after `since`, with their feedback;
- active minutes sit in every hour the conversation was active (`assigned_at` .. `ended_at`),
  so an hour >= `since` can also hold minutes of a conversation created before `since` (a
  message left in the evening, answered the next day): those conversations are included
  too, and only their cells of hours >= `since` are written.

The answers to the optional questions (`about_*` cells) are stored nowhere else, so a rebuild
cannot recompute them: their cells are kept as they are.

That is exact as long as retention keeps every conversation that ended after `since` (it
deletes by age since the end), which holds for the default `since`, now minus
YOUTHHUB_RETENTION_DAYS. Open conversations (queued, active) have no cells yet: they count
when they close, as `services.stats_record_closed` does.

The cells of those hours are deleted and the recomputed ones written in one transaction. On
PostgreSQL the table is locked (EXCLUSIVE: reads go on, writes wait) before the conversations
are read, so a conversation closing meanwhile adds its cells after the rebuild commits
instead of being counted twice or lost; SQLite's IMMEDIATE transactions serialise writers
anyway.
"""

from collections import Counter as Tally
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from chat.models import Conversation, Feedback

from .models import Count
from .services import NOT_REBUILT, conversation_cells, feedback_cells, handover_cells, hour_of

CLOSED_STATES = (
    Conversation.State.ENDED,
    Conversation.State.ABANDONED,
    Conversation.State.NO_SHOW,
)


@dataclass(frozen=True)
class Rebuilt:
    since: datetime  # the first hour rebuilt (UTC)
    conversations: int
    feedback: int
    deleted: int  # cells removed
    written: int  # cells written


def retention_days() -> int:
    return getattr(settings, "YOUTHHUB_RETENTION_DAYS", 30)


def ceil_hour(moment: datetime) -> datetime:
    hour = hour_of(moment)
    return hour if hour == moment else hour + timedelta(hours=1)


def default_since(now: datetime | None = None) -> datetime:
    """The first whole hour inside the retention window."""
    now = now or timezone.now()
    return ceil_hour(now - timedelta(days=retention_days()))


def recompute(since: datetime) -> tuple[Tally, int, int]:
    """The cells of every hour >= `since` (a whole hour) from the stored rows:
    (cells, conversations read, feedback read)."""
    conversations = list(
        Conversation.objects.filter(state__in=CLOSED_STATES).filter(
            Q(created_at__gte=since)
            | Q(assigned_at__isnull=False, ended_at__gt=since)  # active minutes after `since`
        )
    )
    feedback = {
        f.conversation_id: f
        for f in Feedback.objects.filter(
            conversation_id__in=[c.id for c in conversations if c.created_at >= since]
        )
    }
    cells: Tally = Tally()
    for conversation in conversations:
        cells.update(conversation_cells(conversation))
        if conversation.id in feedback:
            cells.update(feedback_cells(feedback[conversation.id], conversation))
    cells.update(handover_recompute(since))
    kept = Tally({cell: n for cell, n in cells.items() if cell[0] >= since and n})
    return kept, len(conversations), len(feedback)


def handover_recompute(since: datetime) -> Tally:
    """Handover cells (counted in the hour a handover was sent) from the stored handovers:
    they outlive the conversation, and each step leaves a field that outlives the content
    (`sent_at`, `first_meeting_at`, the sealed `alternative`, `met_at`)."""
    from youthhub.handover.models import Handover

    cells: Tally = Tally()
    handovers = Handover.objects.filter(sent_at__gte=since).select_related(
        "service", "conversation"
    )
    for handover in handovers:
        cells.update(handover_cells(handover, "sent"))
        if handover.answered_at and handover.first_meeting_at:
            cells.update(handover_cells(handover, "accepted"))
        if handover.alternative is not None:
            cells.update(handover_cells(handover, "declined"))
        if handover.met_at:
            cells.update(handover_cells(handover, "met"))
    return cells


def _lock_counts() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Count._meta.db_table} IN EXCLUSIVE MODE")


def stats_rebuild(*, since: datetime) -> Rebuilt:
    """Replace the cells of every hour >= `since` by the ones recomputed from stored rows.

    `since` is rounded up to a whole hour. Callers must keep it inside the retention window
    (see the module docstring); `default_since()` is.
    """
    since = ceil_hour(since)
    with transaction.atomic():
        _lock_counts()
        cells, n_conversations, n_feedback = recompute(since)
        # The answers to the optional questions exist only as counts: kept as they are.
        deleted, _ = Count.objects.filter(hour__gte=since).exclude(metric__in=NOT_REBUILT).delete()
        Count.objects.bulk_create(
            (
                Count(
                    hour=hour,
                    pool_id=pool_id,
                    site_id=site_id,
                    channel=channel,
                    metric=metric,
                    key=key,
                    value=n,
                )
                for (hour, pool_id, site_id, channel, metric, key), n in cells.items()
            ),
            batch_size=500,
        )
    return Rebuilt(
        since=since,
        conversations=n_conversations,
        feedback=n_feedback,
        deleted=deleted,
        written=len(cells),
    )
