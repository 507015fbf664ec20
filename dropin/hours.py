"""Opening hours in Europe/Oslo time: weekly hours, date exceptions, past-midnight evenings.

Hours are stored as local wall-clock times and turned into aware datetimes per date, so a
day on which daylight saving starts or ends gets the right length (12:00–16:00 is always four
hours; 01:00–04:00 on the last Sunday of March is two). A local time that does not exist
(the skipped hour in March) counts from the moment the clocks jump; an ambiguous one (the
repeated hour in October) means its first occurrence.

Reads only; pure functions over rows fetched in one go (`Schedule.for_sites`).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .models import OpeningException, OpeningHours, Site

OSLO = ZoneInfo("Europe/Oslo")
UTC = ZoneInfo("UTC")
HORIZON_DAYS = 21  # how far ahead "when is the next person on" looks


def _exists(naive: datetime) -> bool:
    aware = naive.replace(tzinfo=OSLO)
    return aware.astimezone(UTC).astimezone(OSLO).replace(tzinfo=None) == naive


def local_moment(day: date, at: time) -> datetime:
    """The aware instant of a local wall-clock time on a date (see module docstring)."""
    naive = datetime.combine(day, at)
    # In the spring gap, move to the first minute that exists: the moment the clocks jump.
    for _ in range(24 * 60):
        if _exists(naive):
            break
        naive = (naive + timedelta(minutes=1)).replace(second=0, microsecond=0)
    # In UTC: Python compares and subtracts two datetimes that share a tzinfo as wall clocks.
    return naive.replace(tzinfo=OSLO, fold=0).astimezone(UTC)


def interval(day: date, opens: time, closes: time) -> tuple[datetime, datetime]:
    """(start, end) of one opening on `day`; `closes` <= `opens` ends on the next day."""
    start = local_moment(day, opens)
    end_day = day if closes > opens else day + timedelta(days=1)
    return start, local_moment(end_day, closes)


@dataclass
class Schedule:
    """The opening hours of one or more sites (a pool is open when any of its sites is)."""

    weekly: dict[int, list[tuple[time, time]]] = field(default_factory=lambda: defaultdict(list))
    exceptions: dict[date, list[tuple[time, time] | None]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Per site, so that several sites' weeks and exceptions do not mix.
    parts: list["Schedule"] = field(default_factory=list)

    @classmethod
    def for_sites(cls, sites: Iterable[Site], around: datetime | None = None) -> "Schedule":
        site_ids = [s.pk for s in sites]
        around = around or datetime.now(OSLO)
        first = around.astimezone(OSLO).date() - timedelta(days=1)
        last = first + timedelta(days=HORIZON_DAYS + 2)
        by_site: dict[int, Schedule] = {pk: cls() for pk in site_ids}
        for row in OpeningHours.objects.filter(site_id__in=site_ids):
            by_site[row.site_id].weekly[row.weekday].append((row.opens, row.closes))
        for row in OpeningException.objects.filter(
            site_id__in=site_ids, date__gte=first, date__lte=last
        ):
            hours = (row.opens, row.closes) if row.opens is not None else None
            by_site[row.site_id].exceptions[row.date].append(hours)
        return cls(parts=list(by_site.values()))

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """Openings that start on local date `day`, in order."""
        if self.parts:
            return sorted(i for part in self.parts for i in part.intervals_on(day))
        if day in self.exceptions:
            rows = [h for h in self.exceptions[day] if h is not None]
        else:
            rows = self.weekly.get(day.weekday(), [])
        return sorted(interval(day, opens, closes) for opens, closes in rows)

    def _around(self, at: datetime, days: int):
        local_day = at.astimezone(OSLO).date()
        for offset in range(-1, days + 1):  # yesterday: an evening that runs past midnight
            yield from self.intervals_on(local_day + timedelta(days=offset))

    def open_interval(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The opening `at` falls in (the one that lasts longest, if they overlap)."""
        current = [(s, e) for s, e in self._around(at, 0) if s <= at < e]
        return max(current, key=lambda i: i[1]) if current else None

    def is_open(self, at: datetime) -> bool:
        return self.open_interval(at) is not None

    def next_opening(self, at: datetime) -> datetime | None:
        """`at` if open now, else the next moment someone is on (None: nothing in sight)."""
        if self.is_open(at):
            return at
        upcoming = [s for s, _ in self._around(at, HORIZON_DAYS) if s > at]
        return min(upcoming) if upcoming else None

    def closes_at(self, at: datetime) -> datetime | None:
        current = self.open_interval(at)
        return current[1] if current else None
