from django.db import models


class Site(models.Model):
    """An arena (physical drop-in place) that also staffs the chat."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.name


class OpeningHours(models.Model):
    """Weekly hours in Europe/Oslo local time (exceptions and pools come with the queue)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["site", "weekday", "opens"]
        verbose_name_plural = "opening hours"

    def __str__(self) -> str:
        return f"{self.site} {self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"
