"""Writing the statistics: called inside the transaction of the step being counted, so a
count exists exactly when its step committed. Every write is an upsert of a `Count` cell.
"""

from collections import Counter as Tally
from datetime import UTC, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from chat.models import ABOUT_QUESTIONS
from dropin.hours import OSLO

from .models import CapacityHour, CapacitySample, Count

# Upper bounds in seconds; the key is the bucket's range in minutes ("2-5", "60+").
WAIT_BUCKETS = (60, 120, 300, 600, 900, 1800, 3600)
DURATION_BUCKETS = (300, 600, 1200, 1800, 2700, 3600)


def bucket_keys(bounds) -> list[str]:
    minutes = [0] + [b // 60 for b in bounds]
    return [f"{a}-{b}" for a, b in zip(minutes, minutes[1:], strict=False)] + [f"{minutes[-1]}+"]


def bucket_of(seconds: float, bounds) -> str:
    keys = bucket_keys(bounds)
    for key, bound in zip(keys, bounds, strict=False):
        if seconds < bound:
            return key
    return keys[-1]


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _bump(cells: Tally) -> None:
    """Add each (hour, pool_id, site_id, channel, metric, key) -> n to its cell."""
    for (hour, pool_id, site_id, channel, metric, key), n in cells.items():
        if not n:
            continue
        where = {
            "hour": hour,
            "pool_id": pool_id,
            "site_id": site_id,
            "channel": channel,
            "metric": metric,
            "key": key,
        }
        if Count.objects.filter(**where).update(value=F("value") + n):
            continue
        try:
            with transaction.atomic():
                Count.objects.create(value=n, **where)
        except IntegrityError:  # another worker created the cell meanwhile
            Count.objects.filter(**where).update(value=F("value") + n)


def conversation_cells(conversation) -> Tally:
    """The counts one closed conversation (ended, abandoned, no-show) contributes."""
    place = (conversation.pool_id or 0, conversation.site_id or 0, conversation.channel)
    arrived = hour_of(conversation.created_at)
    cells: Tally = Tally()

    def add(metric: str, key: str = "", n: int = 1, hour: datetime = arrived) -> None:
        cells[(hour, *place, metric, key)] += n

    add("contacts")
    add("outcome", conversation.state)
    if conversation.requested_staff_id:
        add("requested", "person")
    elif conversation.requested_role:
        add("requested", "role")
        add("role", conversation.requested_role)
    else:
        add("requested", "any")
    add("topic", conversation.topic or "none")
    if conversation.crisis:
        add("crisis")
    if conversation.after_hours:
        add("after_hours")
    if conversation.assigned_at:
        waited = (conversation.assigned_at - conversation.created_at).total_seconds()
        add("wait", bucket_of(max(waited, 0), WAIT_BUCKETS))
        if conversation.state == "ended" and conversation.ended_at:
            length = (conversation.ended_at - conversation.assigned_at).total_seconds()
            add("duration", bucket_of(max(length, 0), DURATION_BUCKETS))
    for tag in conversation.tags or []:
        add("tag", tag)
    if conversation.triage:
        add("triage", conversation.triage)
    # Minutes spent in an active chat, in each hour they fall in (concurrency per hour).
    if conversation.assigned_at and conversation.ended_at:
        start, end = conversation.assigned_at, conversation.ended_at
        hour = hour_of(start)
        while hour < end:
            nxt = hour + timedelta(hours=1)
            seconds = (min(end, nxt) - max(start, hour)).total_seconds()
            minutes = round(seconds / 60)
            if minutes:
                add("active_minutes", "", minutes, hour=hour)
            hour = nxt
    return cells


def stats_record_closed(conversation) -> None:
    _bump(conversation_cells(conversation))


def feedback_cells(feedback, conversation) -> Tally:
    place = (conversation.pool_id or 0, conversation.site_id or 0, conversation.channel)
    hour = hour_of(conversation.created_at)
    cells: Tally = Tally()
    cells[(hour, *place, "feedback", "")] += 1
    for statement in feedback.STATEMENTS:
        score = getattr(feedback, statement)
        if score is not None:
            cells[(hour, *place, f"fb_{statement}", str(score))] += 1
    return cells


def stats_record_feedback(feedback, conversation) -> None:
    _bump(feedback_cells(feedback, conversation))


# The optional questions (chat.models.ABOUT_QUESTIONS): counted when answered, stored nowhere
# else, so a rebuild from raw rows cannot recompute them and leaves their cells alone.
ABOUT_METRICS = {name: f"about_{name}" for name in ABOUT_QUESTIONS}
NOT_REBUILT = tuple(ABOUT_METRICS.values())


# The cells of the optional answers have no arena and no channel (ABOUT_CHANNEL): only the
# pool and the day they were given, so that they cannot be tied to one conversation by its
# hour or place.
ABOUT_CHANNEL = "any"


def about_cells(conversation, answers: dict[str, str], now: datetime | None = None) -> Tally:
    """The answers, each one count in the pool, on the (Oslo) day they were given: the cell's
    `hour` is that day's midnight."""
    pool_id = conversation.pool_id or (conversation.site.pool_id if conversation.site else 0)
    day = (now or timezone.now()).astimezone(OSLO).date()
    midnight = datetime.combine(day, time(0), tzinfo=OSLO).astimezone(UTC)
    return Tally(
        {
            (midnight, pool_id or 0, 0, ABOUT_CHANNEL, ABOUT_METRICS[name], key): 1
            for name, key in answers.items()
        }
    )


def stats_record_about(conversation, answers: dict[str, str]) -> None:
    _bump(about_cells(conversation, answers))


# Days from the handover being sent to the first meeting the service offered.
MEETING_BUCKETS_DAYS = (3, 7, 14, 28, 56)


def handover_cells(handover, event: str) -> Tally:
    """A handover step, counted by destination kind in the hour the handover was sent:
    `sent`, `accepted` (with the days to the first meeting, bucketed), `declined`, `met`."""
    conversation = handover.conversation
    place = (
        (conversation.pool_id or 0, conversation.site_id or 0, conversation.channel)
        if conversation is not None
        else (0, 0, "chat")
    )
    hour = hour_of(handover.sent_at or handover.created_at)
    kind = handover.service.kind
    cells: Tally = Tally()
    cells[(hour, *place, f"handover_{event}", kind)] += 1
    if event == "accepted" and handover.first_meeting_at and handover.sent_at:
        days = (handover.first_meeting_at - handover.sent_at).total_seconds() / 86400
        label = next(
            (f"<{bound}" for bound in MEETING_BUCKETS_DAYS if days < bound),
            f"{MEETING_BUCKETS_DAYS[-1]}+",
        )
        cells[(hour, *place, "handover_days", label)] += 1
    return cells


def stats_record_handover(handover, event: str) -> None:
    _bump(handover_cells(handover, event))


# How long a minute's claim is kept: long enough for every worker to have ticked that minute.
CLAIM_KEPT = timedelta(hours=1)


def _capacity_add(hour: datetime, pool_id: int, figures: dict[str, int]) -> None:
    """Add one sampled minute to the pool's hour (caller holds the minute's claim)."""
    where = {"hour": hour, "pool_id": pool_id}
    added = {f"{name}_minutes": F(f"{name}_minutes") + n for name, n in figures.items()}
    for _attempt in range(2):
        if CapacityHour.objects.filter(**where).update(
            minutes=F("minutes") + 1, queued_max=Greatest("queued_max", figures["queued"]), **added
        ):
            return
        try:
            with transaction.atomic():
                CapacityHour.objects.create(
                    minutes=1,
                    queued_max=figures["queued"],
                    **{f"{name}_minutes": n for name, n in figures.items()},
                    **where,
                )
            return
        except IntegrityError:  # another worker created the hour meanwhile: add to it
            continue


def capacity_sample(now: datetime | None = None, *, force: bool = False) -> int:
    """Count this minute into each pool's hour (once: the first worker to claim the minute
    wins). Returns the number of pools counted."""
    from dropin import selectors as queue  # the queue's own view of who is on and who waits
    from dropin.models import Pool

    now = now or timezone.now()
    minute = now.replace(second=0, microsecond=0)
    if not force and CapacitySample.objects.filter(minute=minute).exists():
        return 0
    staff = queue.on_duty(now)
    waiting = queue.waiting_since_by_pool()
    written = 0
    for pool in Pool.objects.all():
        serving = [s for s in staff if pool.pk in s.pool_ids]
        figures = {
            "staff": len(serving),
            "place": sum(s.capacity for s in serving),
            "busy": sum(s.busy for s in serving),
            "queued": len(waiting.get(pool.pk, [])),
        }
        try:
            with transaction.atomic():
                CapacitySample.objects.create(minute=minute, pool_id=pool.pk)
                _capacity_add(hour_of(minute), pool.pk, figures)
            written += 1
        except IntegrityError:
            pass  # another worker sampled this minute
    if written:
        capacity_claims_delete(before=minute - CLAIM_KEPT)
    return written


def capacity_claims_delete(*, before: datetime) -> int:
    """Forget the claims of minutes before `before` (their figures are in the hours)."""
    deleted, _ = CapacitySample.objects.filter(minute__lt=before).delete()
    return deleted
