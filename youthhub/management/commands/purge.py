"""Apply the retention rules (youthhub/retention.py). Run daily (deploy/systemd/youthhub-purge.timer);
idempotent and safe to run from several hosts at once."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from youthhub.retention import identity_days, purge, retention_days

LABELS = {
    "handovers_expired": "handovers expired (consent ended or proposal untouched)",
    "handover_content_deleted": "answered handovers whose content was deleted",
    "content_destroyed": "conversations whose content was destroyed",
    "conversations_deleted": "old closed conversations deleted",
    "identities_deleted": "stale anonymous identities deleted",
    "blocks_deleted": "blocks that ended, deleted",
    "consultations_deleted": "anonymous consultations past retention, deleted",
    "capacity_claims_deleted": "capacity minute claims older than an hour deleted",
    "handovers_overdue": "sent handovers newly flagged overdue (senders told)",
    "open_older_than_retention": "open conversations older than the retention period (kept)",
}


def moment(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--now {value!r} is not an ISO 8601 date and time") from None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)  # in TIME_ZONE (Europe/Oslo)
    return parsed


class Command(BaseCommand):
    help = (
        "Destroy conversation content YOUTHHUB_RETENTION_DAYS after a conversation closed, "
        "delete stale anonymous identities and old closed conversations "
        "(YOUTHHUB_IDENTITY_DAYS), expire handovers whose consent ended, delete blocks that "
        "ended, delete anonymous consultations past retention. Statistics and the audit log stay."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="show what a run would do, and change nothing",
        )
        parser.add_argument(
            "--now",
            type=str,
            default=None,
            help="act as if it were this moment (ISO 8601, e.g. 2026-05-01T03:00+02:00; "
            "for tests and catching up)",
        )

    def handle(self, *args, dry_run, now, **options):
        at = moment(now) if now else None
        report = purge(now=at, dry_run=dry_run)
        self.stdout.write(
            f"{'Dry run' if dry_run else 'Purge'} as at "
            f"{timezone.localtime(report.now).isoformat(timespec='seconds')}"
            f" (content kept {retention_days()} days, identities {identity_days()} days):"
        )
        for name, count in report.counts().items():
            self.stdout.write(f"  {count:6d}  {LABELS[name]}")
        if dry_run:
            self.stdout.write("Nothing was changed.")
        elif not report.changed:
            self.stdout.write("Nothing to do.")
