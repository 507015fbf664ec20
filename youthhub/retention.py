"""Retention: what youthhub forgets, and when (`python manage.py purge`, daily; docs/privacy.md).

One run, in this order (each step a set of conditional writes, so a second run at the same
moment, or a run on another host at once, finds nothing left to do):

1. `handover_tick`: a sent handover whose consent expired becomes `expired`, an answered one
   loses its content, a proposal nobody touched for YOUTHHUB_CONSENT_DAYS expires; each by
   destroying the handover's data key.
2. Content: a conversation closed (ended, abandoned, no-show) more than
   YOUTHHUB_RETENTION_DAYS ago loses its data key (`conversation_destroy_content`): every
   message, note and feedback text of it is unreadable from then on, in backups taken later
   too. The rows stay a while (history shows `text: null`).
3. Leftovers: a conversation closed more than YOUTHHUB_IDENTITY_DAYS ago is deleted with its
   (unreadable) messages, notes, transfers and feedback. A handover outlives it
   (`conversation` is set to null).
4. Identities: an anonymous youth not seen for YOUTHHUB_IDENTITY_DAYS, with no open
   conversation, no conversation whose content is still kept and no handover whose content
   is still in force, is deleted with everything that hangs on it (conversations, handovers,
   consents).
5. Blocks (chat.Block) that have ended are deleted. (A block also goes at once when staff
   lift it, and with its identity.)
6. Anonymous consultations (handover.Consultation: a question and its answer, no youth
   linked) are deleted YOUTHHUB_RETENTION_DAYS after their last step (answered, or asked if
   never answered), with their data key.
7. Capacity minute claims (`stats.CapacitySample`, which only mark a minute as counted so two
   workers don't count it twice) older than an hour are deleted.
8. Expired staff sessions are cleared (Django's `clearsessions`; by the real clock).

What stays: the statistics roll-ups (`stats.Count`, `stats.CapacityHour`: counts only, never
touched here), the audit log (append-only; it names conversation ids, which then point at
nothing), the service directory, staff and partner accounts. A run that changed anything adds
one `retention.purge` audit event with the numbers.

`dry_run=True` does all of it inside a transaction that is rolled back (no events are sent),
so the numbers are exactly what a real run at that moment would do.
"""

from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chat.models import Block, Conversation, ConversationKey, Youth
from chat.services import conversation_destroy_content
from youthhub.audit.services import audit_record
from youthhub.handover.models import Consultation, HandoverKey
from youthhub.handover.services import handover_tick
from youthhub.stats.services import CLAIM_KEPT, capacity_claims_delete

CLOSED = (Conversation.State.ENDED, Conversation.State.ABANDONED, Conversation.State.NO_SHOW)
BATCH = 200


@dataclass
class PurgeReport:
    now: datetime
    dry_run: bool = False
    handovers_expired: int = 0  # handover_tick: state -> expired, key destroyed
    handover_content_deleted: int = 0  # handover_tick: answered handovers whose consent ended
    content_destroyed: int = 0  # conversations whose data key was destroyed now
    conversations_deleted: int = 0  # closed long ago: the rows themselves
    identities_deleted: int = 0
    blocks_deleted: int = 0  # blocks that ended
    consultations_deleted: int = 0  # anonymous consultations past retention
    capacity_claims_deleted: int = 0  # minute claims older than an hour (no figures in them)
    # Not retention, for the operator: sent handovers flagged overdue by handover_tick (audited
    # there), and conversations still open that started longer ago than the retention period
    # (staff should end them; their content is kept while they are open).
    handovers_overdue: int = 0
    open_older_than_retention: int = 0

    # Housekeeping, not retention (the claims hold no personal data and the sampler deletes
    # them too): reported, but not audited and not a reason to call the run a change.
    NOT_DELETIONS = (
        "now",
        "dry_run",
        "handovers_overdue",
        "open_older_than_retention",
        "capacity_claims_deleted",
    )

    @property
    def changed(self) -> bool:
        """Whether this run deleted or expired anything."""
        return any(getattr(self, f.name) for f in fields(self) if f.name not in self.NOT_DELETIONS)

    def counts(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("now", "dry_run")}

    def deletions(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in self.NOT_DELETIONS}


def retention_days() -> int:
    return settings.YOUTHHUB_RETENTION_DAYS


def identity_days() -> int:
    return max(settings.YOUTHHUB_IDENTITY_DAYS, settings.YOUTHHUB_RETENTION_DAYS)


def _closed_before(cutoff: datetime) -> Q:
    """Closed conversations that closed at or before `cutoff` (by arrival if no end is known)."""
    return Q(state__in=CLOSED) & (
        Q(ended_at__lte=cutoff) | Q(ended_at__isnull=True, created_at__lte=cutoff)
    )


def _ids(queryset) -> list:
    return list(queryset.values_list("pk", flat=True)[:BATCH])


def destroy_old_content(now: datetime) -> int:
    """Step 2: destroy the data key of every conversation closed more than
    YOUTHHUB_RETENTION_DAYS ago. Returns how many keys this call destroyed."""
    cutoff = now - timedelta(days=retention_days())
    due = Conversation.objects.filter(_closed_before(cutoff), key__wrapped__isnull=False)
    destroyed = 0
    while batch := _ids(due):
        for conversation in Conversation.objects.filter(pk__in=batch):
            with transaction.atomic():
                destroyed += conversation_destroy_content(conversation=conversation, now=now)
        if len(batch) < BATCH:
            break
    return destroyed


def delete_old_conversations(now: datetime) -> int:
    """Step 3: delete conversations closed more than YOUTHHUB_IDENTITY_DAYS ago (their content
    was destroyed at retention; a live key here, e.g. after a restore, is destroyed first)."""
    cutoff = now - timedelta(days=identity_days())
    due = Conversation.objects.filter(_closed_before(cutoff))
    deleted = 0
    while batch := _ids(due):
        with transaction.atomic():
            ConversationKey.objects.filter(conversation_id__in=batch, wrapped__isnull=False).update(
                wrapped=None, destroyed_at=now
            )
            _, per_model = (
                Conversation.objects.filter(pk__in=batch).filter(_closed_before(cutoff)).delete()
            )
            deleted += per_model.get(Conversation._meta.label, 0)
        if len(batch) < BATCH:
            break
    return deleted


def _stale_identities(now: datetime):
    """Youth not seen for YOUTHHUB_IDENTITY_DAYS with nothing open and nothing kept."""
    seen_before = now - timedelta(days=identity_days())
    open_or_kept = Conversation.objects.filter(
        Q(state__in=Conversation.OPEN_STATES) | Q(key__wrapped__isnull=False)
    )
    in_force = HandoverKey.objects.filter(wrapped__isnull=False)
    return (
        Youth.objects.filter(last_seen_at__lte=seen_before)
        .exclude(pk__in=open_or_kept.values("youth_id"))
        .exclude(pk__in=in_force.values("handover__youth_id"))
    )


def delete_stale_identities(now: datetime) -> int:
    """Step 4. Each youth is locked and checked again before it goes: a youth who comes back
    at that moment (a new request, a resume) is either seen first and kept, or waits for the
    delete and then finds the identity gone (the page starts a new one)."""
    deleted = 0
    skipped: set = set()
    while batch := _ids(_stale_identities(now).exclude(pk__in=skipped)):
        for youth_id in batch:
            with transaction.atomic():
                locked = Youth.objects.select_for_update(skip_locked=True).filter(pk=youth_id)
                if not list(locked.values_list("pk", flat=True)) or not (
                    _stale_identities(now).filter(pk=youth_id).exists()
                ):
                    skipped.add(youth_id)  # busy elsewhere, gone, or no longer stale
                    continue
                _, per_model = Youth.objects.filter(pk=youth_id).delete()
                deleted += per_model.get(Youth._meta.label, 0)
        if len(batch) < BATCH:
            break
    return deleted


def delete_ended_blocks(now: datetime) -> int:
    """Step 5: a block that has ended is kept no longer (the audit log has `block.add`)."""
    _, per_model = Block.objects.filter(until__lte=now).delete()
    return per_model.get(Block._meta.label, 0)


def delete_old_consultations(now: datetime) -> int:
    """Step 6: consultations whose last step (the answer, else the question) is more than
    YOUTHHUB_RETENTION_DAYS old go, question, answer and data key with them."""
    cutoff = now - timedelta(days=retention_days())
    _, per_model = Consultation.objects.filter(
        Q(answered_at__lte=cutoff) | Q(answered_at__isnull=True, created_at__lte=cutoff)
    ).delete()
    return per_model.get(Consultation._meta.label, 0)


def _purge(report: PurgeReport) -> None:
    now = report.now
    ticked = handover_tick(now=now)
    report.handovers_expired = ticked["expired"]
    report.handover_content_deleted = ticked["content_deleted"]
    report.handovers_overdue = len(ticked["overdue"])
    report.content_destroyed = destroy_old_content(now)
    report.conversations_deleted = delete_old_conversations(now)
    report.identities_deleted = delete_stale_identities(now)
    report.blocks_deleted = delete_ended_blocks(now)
    report.consultations_deleted = delete_old_consultations(now)
    report.capacity_claims_deleted = capacity_claims_delete(before=now - CLAIM_KEPT)
    # Real time, not `now`: a run with a clock moved forward must not log staff out.
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    report.open_older_than_retention = Conversation.objects.filter(
        state__in=Conversation.OPEN_STATES,
        created_at__lte=now - timedelta(days=retention_days()),
    ).count()
    if report.changed:
        audit_record("retention.purge", **report.deletions())


def purge(*, now: datetime | None = None, dry_run: bool = False) -> PurgeReport:
    """Run the retention rules as at `now` (default: the current time)."""
    report = PurgeReport(now=now or timezone.now(), dry_run=dry_run)
    if not dry_run:
        _purge(report)
        return report
    with transaction.atomic():
        _purge(report)
        transaction.set_rollback(True)
    return report
