"""Migrations of the statistics that move data (the module-wide simulated week of
test_stats_rollups.py holds a transaction open, so these run on their own)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from youthhub.stats.models import CapacityHour, CapacitySample


@pytest.mark.django_db(transaction=True)
def test_the_migration_rolls_minute_samples_up_into_hours():
    """Existing minute samples become hourly rows; claims older than an hour go."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("stats", "0001_initial")], [("stats", "0002_capacity_by_the_hour")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("stats", "CapacitySample")
        hour = datetime(2026, 3, 30, 10, tzinfo=UTC)
        recent = timezone.now().replace(second=0, microsecond=0)
        for minute, staff_on, queued in ((0, 2, 0), (1, 3, 4), (59, 3, 1)):
            old.objects.create(
                minute=hour + timedelta(minutes=minute), pool_id=1, staff_on=staff_on,
                places=3 * staff_on, busy=1, queued=queued, longest_wait_seconds=600,
            )  # fmt: skip
        old.objects.create(minute=hour + timedelta(hours=1), pool_id=2, staff_on=1, places=2)
        old.objects.create(minute=recent, pool_id=1, staff_on=1, places=3)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes("stats")
        )
    rows = {
        (row.hour, row.pool_id): (
            row.minutes, row.staff_minutes, row.place_minutes, row.busy_minutes,
            row.queued_minutes, row.queued_max,
        )
        for row in CapacityHour.objects.all()
    }  # fmt: skip
    assert rows[(hour, 1)] == (3, 8, 24, 3, 5, 4)
    assert rows[(hour + timedelta(hours=1), 2)] == (1, 1, 2, 0, 0, 0)
    assert list(CapacitySample.objects.values_list("minute", "pool_id")) == [(recent, 1)]
