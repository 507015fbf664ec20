"""Statistics roll-ups: counts only, so they outlive the conversations retention deletes.

No row holds a youth id, a token, any text or a time finer than the hour. Places are plain
integers (pool and site ids, 0 for none), not foreign keys, so deleting a site never deletes
its history. Rules: docs/statistics.md; small-number suppression: docs/privacy.md.
"""

from django.db import models


class Count(models.Model):
    """One cell: how many of `metric` = `key` happened in one hour, at one place, on one channel.

    Conversations are counted in the hour they arrived (`created_at`), when they close (ended,
    abandoned, no-show); feedback when it is given; active minutes in the hours they fall in.
    """

    hour = models.DateTimeField()  # UTC, the start of the hour
    pool_id = models.PositiveIntegerField(default=0)
    site_id = models.PositiveIntegerField(default=0)
    channel = models.CharField(max_length=8)  # chat | dropin
    metric = models.CharField(max_length=24)
    key = models.CharField(max_length=32, blank=True)
    value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "pool_id", "site_id", "channel", "metric", "key"],
                name="stats_count_cell_unique",
            )
        ]
        indexes = [models.Index(fields=["metric", "hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.metric}={self.key}: {self.value}"


class CapacitySample(models.Model):
    """Once a minute per pool (whichever worker comes first; the pair is unique): who was on,
    their places, places in use, how many waited and the longest wait. No youth data."""

    minute = models.DateTimeField()  # UTC, the start of the minute
    pool_id = models.PositiveIntegerField(default=0)
    staff_on = models.PositiveSmallIntegerField(default=0)
    places = models.PositiveSmallIntegerField(default=0)
    busy = models.PositiveSmallIntegerField(default=0)
    queued = models.PositiveSmallIntegerField(default=0)
    longest_wait_seconds = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "pool_id"], name="stats_sample_unique")
        ]
        indexes = [models.Index(fields=["minute"])]
