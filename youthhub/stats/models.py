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


class CapacityHour(models.Model):
    """Capacity and demand of one pool in one hour (UTC), summed over the minutes sampled:
    minutes sampled, staff-minutes on duty, their chat places, places in use and people
    waiting (so average = sum / minutes), and the most people waiting at once. No youth data,
    no time finer than the hour, and no one person's figure (no longest wait)."""

    hour = models.DateTimeField()  # UTC, the start of the hour
    pool_id = models.PositiveIntegerField(default=0)
    minutes = models.PositiveIntegerField(default=0)
    staff_minutes = models.PositiveIntegerField(default=0)
    place_minutes = models.PositiveIntegerField(default=0)
    busy_minutes = models.PositiveIntegerField(default=0)
    queued_minutes = models.PositiveIntegerField(default=0)
    queued_max = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "pool_id"], name="stats_capacity_hour_unique")
        ]
        indexes = [models.Index(fields=["hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h pool {self.pool_id}: {self.minutes} min"


class CapacitySample(models.Model):
    """Which minutes have been sampled, per pool: the first worker to insert the pair counts
    that minute into `CapacityHour`, the others see the pair and skip it. Only a claim, with
    no figures; rows older than an hour are deleted by the sampler and by the purge."""

    minute = models.DateTimeField()  # UTC, the start of the minute
    pool_id = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "pool_id"], name="stats_sample_unique")
        ]
        indexes = [models.Index(fields=["minute"])]
