"""Recompute the statistics cells inside the retention window (youthhub/stats/rebuild.py)."""

from datetime import date, datetime, time

from django.core.management.base import BaseCommand, CommandError

from dropin.hours import OSLO
from youthhub.stats.rebuild import default_since, retention_days, stats_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the statistics cells of every hour from --since (default: the start of the "
        "retention window) from the conversations still stored, replacing the stored cells."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            type=date.fromisoformat,
            default=None,
            help="first day, YYYY-MM-DD (midnight in Oslo); default: now minus "
            "YOUTHHUB_RETENTION_DAYS",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="allow a --since before the retention window (counts of deleted "
            "conversations are lost)",
        )

    def handle(self, *args, since, force, **options):
        window = default_since()
        start = datetime.combine(since, time(0), tzinfo=OSLO) if since else window
        if start < window and not force:
            raise CommandError(
                f"{since} is before the retention window ({retention_days()} days: from "
                f"{window.astimezone(OSLO):%Y-%m-%d %H:%M}). Conversations older than that may "
                "be deleted already, and rebuilding their hours would lose their counts. Use "
                "--force only if every conversation since then is still stored."
            )
        result = stats_rebuild(since=start)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt the cells from {result.since.astimezone(OSLO):%Y-%m-%d %H:%M} (Oslo): "
                f"{result.conversations} conversations, {result.feedback} feedback; "
                f"{result.deleted} cells replaced by {result.written}."
            )
        )
