"""Opening hours in Europe/Oslo: DST change days, exceptions, evenings past midnight."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dropin.hours import Schedule, interval, local_moment
from dropin.models import OpeningException
from dropin.services import site_ensure

OSLO = ZoneInfo("Europe/Oslo")
UTC = ZoneInfo("UTC")


def oslo(*args) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def test_a_day_on_which_summer_time_starts_keeps_wall_clock_hours():
    # 29 March 2026: clocks go 02:00 -> 03:00.
    start, end = interval(date(2026, 3, 29), time(12), time(16))
    assert end - start == timedelta(hours=4)
    assert start == datetime(2026, 3, 29, 10, tzinfo=UTC)  # 12:00 CEST
    # Open 01:00-04:00 on that night is two real hours; 02:30 does not exist and means 03:00.
    start, end = interval(date(2026, 3, 29), time(1), time(4))
    assert end - start == timedelta(hours=2)
    assert local_moment(date(2026, 3, 29), time(2, 30)) == datetime(2026, 3, 29, 1, tzinfo=UTC)


def test_a_day_on_which_summer_time_ends_is_an_hour_longer_at_night():
    # 25 October 2026: clocks go 03:00 -> 02:00; 01:00-04:00 is four real hours.
    start, end = interval(date(2026, 10, 25), time(1), time(4))
    assert end - start == timedelta(hours=4)
    start, end = interval(date(2026, 10, 25), time(12), time(16))
    assert start == datetime(2026, 10, 25, 11, tzinfo=UTC)  # 12:00 CET


@pytest.mark.django_db
def test_weekly_hours_exceptions_and_past_midnight(arena):
    schedule = Schedule.for_sites([arena], oslo(2026, 12, 20))
    assert schedule.is_open(oslo(2026, 12, 21, 12, 30))  # Monday
    assert not schedule.is_open(oslo(2026, 12, 21, 16, 0))  # closes at 16:00 sharp
    assert schedule.is_open(oslo(2026, 12, 22, 17, 30))  # Tuesday evening
    # Christmas Eve (Thursday) is a holiday; 30 December gets an extended evening.
    OpeningException.objects.create(site=arena, date=date(2026, 12, 24), note="Julaften")
    OpeningException.objects.create(
        site=arena, date=date(2026, 12, 30), opens=time(18), closes=time(1), note="Nyttårskveld"
    )
    schedule = Schedule.for_sites([arena], oslo(2026, 12, 20))
    assert not schedule.is_open(oslo(2026, 12, 24, 13, 0))
    assert not schedule.is_open(oslo(2026, 12, 30, 13, 0))  # the exception replaces the day
    assert schedule.is_open(oslo(2026, 12, 30, 23, 30))
    assert schedule.is_open(oslo(2026, 12, 31, 0, 30))  # past midnight
    assert not schedule.is_open(oslo(2026, 12, 31, 1, 0))
    assert schedule.closes_at(oslo(2026, 12, 30, 23, 0)) == oslo(2026, 12, 31, 1, 0)
    # Closed on the holiday: the next person is on Friday 25th at 12:00.
    assert schedule.next_opening(oslo(2026, 12, 24, 9, 0)) == oslo(2026, 12, 25, 12, 0)
    # Friday evening -> Monday noon.
    assert schedule.next_opening(oslo(2026, 12, 25, 16, 5)) == oslo(2026, 12, 28, 12, 0)


@pytest.mark.django_db
def test_a_pool_is_open_when_any_of_its_arenas_is(arena):
    evening = site_ensure(
        slug="larvik",
        name="Ung Arena Larvik",
        weekly_hours={2: (time(17), time(21))},
        pool=arena.pool,
    )
    schedule = Schedule.for_sites([arena, evening], oslo(2026, 12, 20))
    wednesday_evening = oslo(2026, 12, 23, 19, 0)
    assert schedule.is_open(wednesday_evening)
    assert not Schedule.for_sites([arena], wednesday_evening).is_open(wednesday_evening)
