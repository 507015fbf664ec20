"""Arenas, regional chat pools, opening hours and drop-in ticket numbers. Data only.

The queue itself is `chat.Conversation` rows in state `queued` (chat and drop-in alike):
it lives in the database, so a restart of every worker keeps every position.
"""

from django.db import models
from django.db.models import Q


class Pool(models.Model):
    """A regional chat pool: the staff of several arenas answer one chat queue together."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """An arena (physical drop-in place) whose staff also answer its pool's chat."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)
    pool = models.ForeignKey(
        Pool, on_delete=models.PROTECT, null=True, blank=True, related_name="sites"
    )
    # Drop-in tickets read e.g. "B-17": this letter, then the day's running number.
    ticket_prefix = models.CharField(max_length=2, default="A")

    def __str__(self) -> str:
        return self.name


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class OpeningHours(models.Model):
    """Weekly hours in Europe/Oslo local time. `closes` <= `opens` means open past midnight."""

    Weekday = Weekday

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["site", "weekday", "opens"]
        verbose_name_plural = "opening hours"

    def __str__(self) -> str:
        return f"{self.site} {self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class OpeningException(models.Model):
    """One date with other hours than the week says: a holiday (closed) or an extended evening.

    Every exception row of a date replaces that date's weekly hours; a row without times
    means closed all day.
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="exceptions")
    date = models.DateField()
    opens = models.TimeField(null=True, blank=True)
    closes = models.TimeField(null=True, blank=True)
    note = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["site", "date", "opens"]
        constraints = [
            models.CheckConstraint(
                condition=Q(opens__isnull=True, closes__isnull=True)
                | Q(opens__isnull=False, closes__isnull=False),
                name="exception_both_times_or_none",
            )
        ]

    def __str__(self) -> str:
        if self.opens is None:
            return f"{self.site} {self.date}: closed ({self.note})"
        return f"{self.site} {self.date}: {self.opens:%H:%M}-{self.closes:%H:%M} ({self.note})"


class TicketCounter(models.Model):
    """The last drop-in ticket number handed out at a site on a (local) day."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE)
    day = models.DateField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "day"], name="one_counter_per_day")]


class TimerHold(models.Model):
    """While a hold's `until` (real time) is ahead, the workers' timers skip their ticks.

    `simulate_traffic` writes weeks of the past through the real services; a live timer acting
    on the real clock would end its called tickets as no-shows or offer switches between two of
    its steps. The simulation holds the timers for its run (renewing the hold as it goes, so a
    crashed run frees them within `until`) and ticks the simulated clock itself.
    """

    name = models.CharField(primary_key=True, max_length=40)
    until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} until {self.until:%Y-%m-%d %H:%M:%S}"
