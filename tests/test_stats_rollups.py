"""The statistics roll-ups against a simulated week of traffic (youthhub/stats/simulate.py).

One week (Easter 2026, Mon 30 March - Sun 5 April: the arena is closed on Maundy Thursday and
Good Friday, so the two days get weekend traffic and nobody on) is replayed once per module
through the real services at a small load; every test reads it inside its own savepoint, so a
test that deletes rows leaves the week to the next one.
"""

import uuid
from collections import Counter
from datetime import date, datetime, time, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from chat.models import ABOUT_QUESTIONS, STAFF_TAGS, TOPICS, Conversation, Feedback, Youth
from chat.services import youth_session_create
from dropin.hours import OSLO, UTC
from dropin.models import OpeningException, Pool, Site
from dropin.selectors import timers_held
from dropin.services import queue_request
from youthhub.handover.models import ServiceKind
from youthhub.staff.models import Role, StaffProfile
from youthhub.stats.models import CapacityHour, CapacitySample, Count
from youthhub.stats.rebuild import stats_rebuild
from youthhub.stats.services import MEETING_BUCKETS_DAYS, capacity_sample
from youthhub.stats.simulate import simulate

pytestmark = pytest.mark.django_db

HANDOVER_EVENTS = ("sent", "accepted", "declined", "met")

START = date(2026, 3, 30)
HOLIDAYS = (date(2026, 4, 2), date(2026, 4, 3))
OPEN_DAYS = (START, START + timedelta(1), START + timedelta(2))
DAYS = 7
LOAD = 0.3
CLOSED = ("ended", "abandoned", "no_show")


@pytest.fixture(scope="module")
def week(django_db_setup, django_db_blocker):
    """The simulated week, kept for the whole module in a transaction rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        from django.core.management import call_command

        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
        site = Site.objects.get(slug="tonsberg")
        for day in HOLIDAYS:  # seed_demo seeds the holidays of this year and the next only
            OpeningException.objects.get_or_create(site=site, date=day, opens=None, closes=None)
        staff_before = set(StaffProfile.objects.values_list("pk", "status", "seen_at"))
        now_before = timezone.now
        held = []  # whether the live timers were held, at each simulated day
        summary = simulate(
            start=START,
            days=DAYS,
            seed=3,
            load=LOAD,
            log=lambda _: held.append(timers_held(now=datetime.now(UTC))),
        )
        assert held and all(held) and not timers_held(now=datetime.now(UTC) - timedelta(days=1))
        assert timezone.now is now_before  # the clock is given back
        assert set(StaffProfile.objects.values_list("pk", "status", "seen_at")) == staff_before
        yield summary
        transaction.set_rollback(True)


def local_day(moment: datetime) -> date:
    return moment.astimezone(OSLO).date()


def cells() -> dict:
    return {
        (c.hour, c.pool_id, c.site_id, c.channel, c.metric, c.key): c.value
        for c in Count.objects.all()
    }


# The wait buckets, written out again here (upper bounds in minutes) rather than imported.
WAIT_LABELS = [(1, "0-1"), (2, "1-2"), (5, "2-5"), (10, "5-10"), (15, "10-15"), (30, "15-30")]
WAIT_LABELS += [(60, "30-60")]


def wait_label(seconds: float) -> str:
    for bound, label in WAIT_LABELS:
        if seconds < bound * 60:
            return label
    return "60+"


def raw_by_day() -> Counter:
    """Per local day and channel, straight from the conversations and feedback still stored."""
    tally: Counter = Counter()
    for c in Conversation.objects.filter(state__in=CLOSED):
        day = local_day(c.created_at)

        def add(metric, key=""):
            tally[(day, c.channel, metric, key)] += 1

        add("contacts")
        add("outcome", c.state)
        add("topic", c.topic or "none")
        if c.requested_staff_id:
            add("requested", "person")
        elif c.requested_role:
            add("requested", "role")
            add("role", c.requested_role)
        else:
            add("requested", "any")
        if c.crisis:
            add("crisis")
        if c.after_hours:
            add("after_hours")
        if c.assigned_at:
            add("wait", wait_label((c.assigned_at - c.created_at).total_seconds()))
        for tag in c.tags:
            add("tag", tag)
        if c.triage:
            add("triage", c.triage)
    # Feedback counts in the hour its conversation arrived.
    for f in Feedback.objects.select_related("conversation"):
        c = f.conversation
        day = local_day(c.created_at)
        tally[(day, c.channel, "feedback", "")] += 1
        for name in Feedback.STATEMENTS:
            score = getattr(f, name)
            if score is not None:
                tally[(day, c.channel, f"fb_{name}", str(score))] += 1
    return tally


def cells_by_day(metrics) -> Counter:
    tally: Counter = Counter()
    for c in Count.objects.filter(metric__in=metrics):
        tally[(local_day(c.hour), c.channel, c.metric, c.key)] += c.value
    return tally


def test_the_week_looks_like_a_week(week):
    assert week.errors == 0
    assert week.days == DAYS
    conversations = Conversation.objects.all()
    assert week.contacts == conversations.count() > 100
    states = Counter(conversations.values_list("state", flat=True))
    assert week.abandoned == states["abandoned"] > 0
    assert week.no_shows == states["no_show"] > 0
    assert week.still_open == states["queued"] + states["active"]
    assert states["active"] == 0  # every chat that started also ended
    assert week.feedback == Feedback.objects.count() > 0
    assert week.crisis == conversations.filter(crisis=True).count() > 0
    assert conversations.filter(channel="dropin").exists()
    assert conversations.filter(after_hours=True).exists()
    assert conversations.exclude(requested_staff=None).exists()
    assert conversations.exclude(requested_role="").exists()
    # Open days are busier than the holidays and the weekend, when nobody was on.
    per_day = Counter(local_day(c) for c in conversations.values_list("created_at", flat=True))
    closed_days = [START + timedelta(d) for d in range(3, 7)]
    assert min(per_day[d] for d in OPEN_DAYS) > max(per_day[d] for d in closed_days)
    closed = datetime.combine(closed_days[0], time(0), tzinfo=OSLO)
    assert not conversations.filter(created_at__gte=closed, after_hours=False).exists()
    assert not conversations.filter(created_at__gte=closed, channel="dropin").exists()


def test_the_cells_add_up_to_the_raw_rows_day_by_day(week):
    raw = raw_by_day()
    metrics = {metric for _day, _channel, metric, _key in raw}
    assert {"contacts", "outcome", "wait", "topic", "tag", "feedback", "fb_useful"} <= metrics
    assert cells_by_day(metrics) == raw
    # Durations and active minutes: per hour they are rounded, so only close in total.
    ended = Conversation.objects.filter(state__in=CLOSED, assigned_at__isnull=False)
    exact = sum((c.ended_at - c.assigned_at).total_seconds() / 60 for c in ended)
    counted = sum(Count.objects.filter(metric="active_minutes").values_list("value", flat=True))
    pieces = sum(
        1 + int((c.ended_at - c.assigned_at).total_seconds() // 3600) + 1 for c in ended
    )  # an upper bound on the hour pieces, each rounded by at most half a minute
    assert abs(counted - exact) <= pieces / 2
    durations = sum(Count.objects.filter(metric="duration").values_list("value", flat=True))
    assert durations == ended.filter(state="ended").count()


def test_rebuild_reproduces_exactly_the_same_cells(week):
    before = cells()
    assert before
    result = stats_rebuild(since=datetime.combine(START, time(0), tzinfo=OSLO))
    assert cells() == before
    # The answers to the optional questions exist only as counts: kept, not rewritten.
    about = [cell for cell in before if cell[4].startswith("about_")]
    for name, answered in week.about_answers.items():  # every answer counted once
        assert sum(before[cell] for cell in about if cell[4] == f"about_{name}") == answered
    assert about and set(week.about_answers) == {"age", "gender", "heard"}
    assert result.written == len(before) - len(about)
    # From the middle of a chat: hours before `since` stay as they were, and the active minutes
    # of a conversation that arrived before `since` are kept in the hours after it.
    later = datetime.combine(START + timedelta(1), time(12), tzinfo=OSLO)
    middle = None
    for c in Conversation.objects.filter(state="ended", created_at__gte=later).order_by(
        "created_at"
    ):
        boundary = c.assigned_at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        if boundary < c.ended_at:
            middle = boundary
            break
    assert middle is not None
    stats_rebuild(since=middle)
    assert cells() == before


def test_cells_hold_no_youth_id_token_text_or_time_within_the_hour(week):
    for model in (Count, CapacityHour, CapacitySample):
        for f in model._meta.get_fields():
            assert f.get_internal_type() not in (
                "UUIDField",
                "ForeignKey",
                "TextField",
                "BinaryField",
                "JSONField",
            ), f
    assert Count.objects.count() > 100
    for hour in Count.objects.values_list("hour", flat=True):
        assert (hour.minute, hour.second, hour.microsecond) == (0, 0, 0)
    for hour in CapacityHour.objects.values_list("hour", flat=True):
        assert (hour.minute, hour.second, hour.microsecond) == (0, 0, 0)
    # The minute claims hold no figures, and only the last hour's are kept.
    assert {f.name for f in CapacitySample._meta.get_fields()} == {"id", "minute", "pool_id"}
    claims = list(CapacitySample.objects.values_list("minute", flat=True))
    assert claims and max(claims) - min(claims) <= timedelta(hours=1)
    # Every key comes from a fixed vocabulary.
    vocabulary = {
        "outcome": set(CLOSED),
        "topic": {*TOPICS, "none"},
        "tag": set(STAFF_TAGS),
        "triage": {"green", "yellow", "red"},
        "role": set(Role.values),
        "requested": {"any", "role", "person"},
        "wait": {label for _bound, label in WAIT_LABELS} | {"60+"},
        "duration": {"0-5", "5-10", "10-20", "20-30", "30-45", "45-60", "60+"},
        **{f"handover_{event}": set(ServiceKind.values) for event in HANDOVER_EVENTS},
        "handover_days": {f"<{b}" for b in MEETING_BUCKETS_DAYS} | {f"{MEETING_BUCKETS_DAYS[-1]}+"},
        **{f"about_{name}": set(choices) for name, choices in ABOUT_QUESTIONS.items()},
    }
    for metric, key in Count.objects.values_list("metric", "key").distinct():
        if metric in vocabulary:
            assert key in vocabulary[metric], (metric, key)
        elif metric.startswith("fb_"):
            assert metric[3:] in Feedback.STATEMENTS and key in {str(n) for n in range(6)}
        else:
            assert metric in {"contacts", "crisis", "after_hours", "feedback", "active_minutes"}
            assert key == ""
    # No value of any column is (or contains) an id of a youth or a conversation.
    ids = set()
    for pk in [*Youth.objects.values_list("id", flat=True)]:
        ids |= {str(pk), pk.hex}
    for pk in Conversation.objects.values_list("id", flat=True):
        ids |= {str(pk), pk.hex}
    for model in (Count, CapacityHour):
        for row in model.objects.values_list():
            for value in row:
                text = str(value)
                assert text not in ids
                assert not any(i in text for i in ids if len(text) >= 32)
                if isinstance(value, str) and len(value) >= 32:
                    with pytest.raises(ValueError):
                        uuid.UUID(value)


def test_the_statistics_survive_deleting_the_conversations(week):
    before = cells()
    samples = list(CapacityHour.objects.order_by("hour", "pool_id").values_list())
    Youth.objects.all().delete()  # what retention does to stale identities, with everything
    assert not Conversation.objects.exists() and not Feedback.objects.exists()
    assert cells() == before
    assert list(CapacityHour.objects.order_by("hour", "pool_id").values_list()) == samples


def test_capacity_is_kept_by_the_hour_one_minute_counted_once(week):
    hours = CapacityHour.objects.all()
    assert sum(h.minutes for h in hours) == week.capacity_samples
    assert all(h.minutes <= 60 for h in hours)
    # While the arena is open, every minute is sampled (Monday 12:00-16:00 in Oslo).
    monday = datetime.combine(START, time(12), tzinfo=OSLO)
    open_hours = hours.filter(hour__gte=monday, hour__lt=monday + timedelta(hours=4))
    assert [h.minutes for h in open_hours.order_by("hour")] == [60] * 4
    # ... and the staff on shift stay "on now" (their dashboards' pings keep seen_at fresh in
    # simulated time): Monday has three from 12 (the 12:00 sample is taken just before they
    # log on) and a fourth from 13.
    for h in open_hours.filter(hour__gte=monday + timedelta(hours=1)):
        assert h.staff_minutes >= 3 * 60 and h.place_minutes >= h.busy_minutes
        assert h.queued_max * 60 >= h.queued_minutes
    assert not Conversation.objects.filter(
        created_at__gte=monday, created_at__lt=monday + timedelta(hours=4), after_hours=True
    ).exists()
    # Two calls in one minute (two workers ticking): counted once per pool, whatever the order.
    Pool.objects.create(slug="telemark", name="Telemark chat")  # nobody works there
    moment = datetime.combine(START + timedelta(days=DAYS + 1), time(10, 0, 12), tzinfo=OSLO)
    hour = moment.replace(minute=0, second=0).astimezone(UTC)
    assert capacity_sample(moment) == Pool.objects.count() == 2
    assert capacity_sample(moment + timedelta(seconds=30)) == 0
    assert capacity_sample(moment + timedelta(seconds=40), force=True) == 0
    assert [h.minutes for h in CapacityHour.objects.filter(hour=hour)] == [1, 1]
    assert capacity_sample(moment + timedelta(minutes=1)) == 2
    assert [h.minutes for h in CapacityHour.objects.filter(hour=hour)] == [2, 2]
    # Someone waiting in the empty pool: counted as waiting, and as the most at once.
    youth, _token = youth_session_create()
    waiting = queue_request(youth=youth, pool_slug="telemark")
    assert capacity_sample(waiting.created_at) == 2
    telemark = CapacityHour.objects.get(
        hour=waiting.created_at.replace(minute=0, second=0, microsecond=0),
        pool_id=waiting.pool_id,
    )
    assert (telemark.queued_minutes, telemark.queued_max, telemark.staff_minutes) == (1, 1, 0)
