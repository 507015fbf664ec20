"""Reading the statistics: figures from the roll-ups, with small numbers hidden.

Every figure is a `Table`: labelled counts and their total, after `suppress` (the rule is in
docs/privacy.md § Statistics). Charts, the page and the CSV export all read these same tables,
so the export holds exactly what the page shows.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from chat.models import STAFF_TAGS, TOPICS, Triage
from dropin.hours import OSLO
from dropin.models import Pool, Site
from youthhub.staff.models import Role

from .models import CapacitySample, Count
from .services import DURATION_BUCKETS, MEETING_BUCKETS_DAYS, WAIT_BUCKETS, bucket_keys

THRESHOLD = 5  # counts below this are shown as "<5"
MAX_DAYS = 400


class BadFilter(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    start: date
    end: date  # inclusive
    place: str = ""  # "" (everything) | "pool:<id>" | "site:<id>"
    channel: str = ""  # "" | "chat" | "dropin"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def query(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "place": self.place,
            "channel": self.channel,
        }


def parse_filters(params, today: date | None = None) -> Filters:
    """Filters from a query string; default: the last 28 days. Bad input raises BadFilter."""
    today = today or timezone.localdate()

    def day(name: str, default: date) -> date:
        raw = params.get(name) or ""
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise BadFilter(
                _("{field} must be a date like 2026-11-23.").format(field=name)
            ) from None

    end = day("end", today)
    start = day("start", end - timedelta(days=27))
    if start > end:
        raise BadFilter(_("The start date is after the end date."))
    if (end - start).days >= MAX_DAYS:
        raise BadFilter(_("Choose at most {n} days.").format(n=MAX_DAYS))
    place = params.get("place") or ""
    if place:
        kind, _sep, raw_id = place.partition(":")
        model = {"pool": Pool, "site": Site}.get(kind)
        if model is None or not raw_id.isdigit() or not model.objects.filter(pk=raw_id).exists():
            raise BadFilter(_("There is no such place."))
    channel = params.get("channel") or ""
    if channel not in ("", "chat", "dropin"):
        raise BadFilter(_("Channel is chat or drop-in."))
    return Filters(start=start, end=end, place=place, channel=channel)


def places() -> list[tuple[str, str]]:
    """The place filter's choices."""
    choices = [("", _("Everywhere"))]
    for pool in Pool.objects.order_by("name"):
        choices.append((f"pool:{pool.pk}", pool.name))
        for site in pool.sites.order_by("name"):
            choices.append(
                (f"site:{site.pk}", "— " + _("drop-in at {site}").format(site=site.name))
            )
    return choices


# -- small numbers ------------------------------------------------------------------------------


def suppress(values: dict[str, int]) -> tuple[dict[str, int | None], int | None]:
    """Hide small counts so that no hidden count can be recovered from what is shown.

    1. Every count below THRESHOLD is hidden (None, shown as "<5"); zero too, so "<5" never
       tells "none" from "a few".
    2. Complementary cells: while the hidden counts of the table add up to more than zero but
       less than THRESHOLD (one hidden cell next to a shown total would give it away by
       subtraction), the smallest shown count is hidden too. When every hidden count is zero,
       subtraction can only show that nobody is in them, which points at no one.
    3. The total is hidden when it is below THRESHOLD (then every cell is hidden as well).
    """
    total = sum(values.values())
    if total < THRESHOLD:
        return {key: None for key in values}, None
    hidden = {key for key, value in values.items() if value < THRESHOLD}
    while 0 < sum(values[key] for key in hidden) < THRESHOLD:
        shown = [key for key in values if key not in hidden]
        if not shown:
            break
        hidden.add(min(shown, key=lambda key: (values[key], key)))
    return {key: (None if key in hidden else value) for key, value in values.items()}, total


@dataclass
class Table:
    name: str
    title: str
    labels: dict[str, str]  # key -> label, in display order
    values: dict[str, int | None] = field(default_factory=dict)  # after suppression
    total: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)  # derived figures (median ...), already safe

    @classmethod
    def of(cls, name, title, labels: dict[str, str], counts: dict[str, int], note="") -> "Table":
        shown, total = suppress({key: counts.get(key, 0) for key in labels})
        return cls(name=name, title=title, labels=labels, values=shown, total=total, note=note)

    def rows(self) -> list[tuple[str, str]]:
        """(label, shown value) with "<5" for hidden ones."""
        return [(self.labels[key], display(self.values[key])) for key in self.labels]

    def cells(self) -> list[list[str]]:
        """The table as the page and the CSV show it: label, value, then per-row extras
        (the capacity table's staff on and places)."""
        per_row = [name for name, value in self.extra.items() if isinstance(value, dict)]
        return [
            [self.labels[key], display(self.values[key])]
            + [display(self.extra[name][key]) for name in per_row]
            for key in self.labels
        ]


def display(value) -> str:
    if value is None:
        return f"<{THRESHOLD}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


# -- reading the roll-ups -----------------------------------------------------------------------


def _utc_range(f: Filters) -> tuple[datetime, datetime]:
    start = datetime.combine(f.start, time(0), tzinfo=OSLO).astimezone(UTC)
    end = datetime.combine(f.end + timedelta(days=1), time(0), tzinfo=OSLO).astimezone(UTC)
    return start, end


def _place_filter(f: Filters) -> Q:
    if not f.place:
        return Q()
    kind, _sep, raw_id = f.place.partition(":")
    pk = int(raw_id)
    if kind == "site":
        return Q(site_id=pk)
    site_ids = list(Site.objects.filter(pool_id=pk).values_list("pk", flat=True))
    return Q(pool_id=pk) | Q(site_id__in=site_ids)


def counts(f: Filters):
    start, end = _utc_range(f)
    qs = Count.objects.filter(_place_filter(f), hour__gte=start, hour__lt=end)
    if f.channel:
        qs = qs.filter(channel=f.channel)
    return qs


def _by_key(f: Filters, metric: str) -> dict[str, int]:
    rows = counts(f).filter(metric=metric).values("key").annotate(n=Sum("value"))
    return {row["key"]: row["n"] for row in rows}


def _by_local_hour(f: Filters, metric: str) -> list[tuple[datetime, int]]:
    rows = counts(f).filter(metric=metric).values("hour").annotate(n=Sum("value"))
    return [(row["hour"].astimezone(OSLO), row["n"]) for row in rows]


def _quantile_bucket(values: dict[str, int], keys: list[str], q: float) -> str | None:
    """The bucket holding the q-quantile (from the histogram, never from single rows)."""
    total = sum(values.get(k, 0) for k in keys)
    if total < THRESHOLD:
        return None
    running = 0
    for key in keys:
        running += values.get(key, 0)
        if running >= q * total:
            return key
    return keys[-1]


def _minutes_label(key: str) -> str:
    return _("{range} min").format(range=key.replace("-", "–"))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def figures(f: Filters) -> dict[str, Table]:
    tables: dict[str, Table] = {}

    arrivals = _by_local_hour(f, "contacts")
    by_day: dict[str, int] = {}
    by_weekday: dict[str, int] = {}
    by_hour: dict[str, int] = {}
    for moment, n in arrivals:
        by_day[moment.date().isoformat()] = by_day.get(moment.date().isoformat(), 0) + n
        wd = WEEKDAYS[moment.weekday()]
        by_weekday[wd] = by_weekday.get(wd, 0) + n
        by_hour[f"{moment.hour:02d}"] = by_hour.get(f"{moment.hour:02d}", 0) + n
    days = [(f.start + timedelta(days=i)).isoformat() for i in range(f.days)]
    tables["by_day"] = Table.of("by_day", _("Contacts by day"), {d: d for d in days}, by_day)
    weekday_names = [
        _("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"),
        _("Saturday"), _("Sunday"),
    ]  # fmt: skip
    tables["by_weekday"] = Table.of(
        "by_weekday",
        _("Contacts by weekday"),
        dict(zip(WEEKDAYS, weekday_names, strict=True)),
        by_weekday,
    )
    tables["by_hour"] = Table.of(
        "by_hour",
        _("Contacts by hour of the day"),
        {f"{h:02d}": f"{h:02d}" for h in range(24)},
        by_hour,
    )
    total = sum(by_day.values())
    after = sum(_by_key(f, "after_hours").values())
    tables["after_hours"] = Table.of(
        "after_hours",
        _("Asked while nobody was on"),
        {"open": _("While open"), "after": _("While closed (left a message)")},
        {"open": total - after, "after": after},
    )
    tables["outcome"] = Table.of(
        "outcome",
        _("How requests ended"),
        {
            "ended": _("Talked"),
            "abandoned": _("Left the queue"),
            "no_show": _("Drop-in ticket called, nobody came"),
        },
        _by_key(f, "outcome"),
    )
    tables["channel"] = Table.of(
        "channel",
        _("Chat and drop-in"),
        {"chat": _("Chat"), "dropin": _("Drop-in")},
        {
            row["channel"]: row["n"]
            for row in counts(f)
            .filter(metric="contacts")
            .values("channel")
            .annotate(n=Sum("value"))
        },
    )
    wait_keys = bucket_keys(WAIT_BUCKETS)
    waits = _by_key(f, "wait")
    tables["wait"] = Table.of(
        "wait",
        _("Waiting time to the first answer"),
        {k: _minutes_label(k) for k in wait_keys},
        waits,
        note=_("Median and 90th percentile are read from these buckets."),
    )
    tables["wait"].extra = {
        "median": _quantile_bucket(waits, wait_keys, 0.5),
        "p90": _quantile_bucket(waits, wait_keys, 0.9),
    }
    duration_keys = bucket_keys(DURATION_BUCKETS)
    durations = _by_key(f, "duration")
    tables["duration"] = Table.of(
        "duration",
        _("Length of conversations"),
        {k: _minutes_label(k) for k in duration_keys},
        durations,
    )
    tables["duration"].extra = {"median": _quantile_bucket(durations, duration_keys, 0.5)}
    tables["requested"] = Table.of(
        "requested",
        _("Whom youth asked for"),
        {"person": _("A named person"), "role": _("A role"), "any": _("First available")},
        _by_key(f, "requested"),
    )
    tables["role"] = Table.of(
        "role",
        _("Roles asked for"),
        {r: str(label) for r, label in Role.choices},
        _by_key(f, "role"),
    )
    tables["topic"] = Table.of(
        "topic",
        _("Topics youth chose"),
        {**{k: str(v) for k, v in TOPICS.items()}, "none": _("No topic chosen")},
        _by_key(f, "topic"),
    )
    tables["tag"] = Table.of(
        "tag",
        _("Topics staff tagged"),
        {k: str(v) for k, v in STAFF_TAGS.items()},
        _by_key(f, "tag"),
        note=_("A conversation can have several tags."),
    )
    tables["triage"] = Table.of(
        "triage", _("Triage colour"), {k: str(v) for k, v in Triage.choices}, _by_key(f, "triage")
    )
    crisis = sum(_by_key(f, "crisis").values())
    tables["crisis"] = Table.of(
        "crisis",
        _("Crisis flags"),
        {"crisis": _("Said they were not safe"), "other": _("Other requests")},
        {"crisis": crisis, "other": total - crisis},
    )
    tables.update(handover_tables(f))
    tables["capacity"] = capacity_table(f, by_hour)
    tables.update(feedback_tables(f))
    return tables


def handover_tables(f: Filters) -> dict[str, Table]:
    """Handovers by destination and outcome: how many were sent, accepted (offer rate),
    declined, met; days from sending to the first meeting offered."""
    from youthhub.handover.models import ServiceKind

    kinds = {str(k): str(label) for k, label in ServiceKind.choices}
    tables = {}
    for event, title in (
        ("sent", _("Handovers sent, by kind of service")),
        ("accepted", _("Handovers the service said yes to")),
        ("declined", _("Handovers the service said no to (with an alternative)")),
        ("met", _("First meetings held")),
    ):
        tables[f"handover_{event}"] = Table.of(
            f"handover_{event}", title, kinds, _by_key(f, f"handover_{event}")
        )
    sent = tables["handover_sent"].total
    accepted = tables["handover_accepted"].total
    declined = tables["handover_declined"].total
    if sent:
        if accepted is not None:
            tables["handover_accepted"].extra = {"rate": f"{100 * accepted / sent:.0f} %"}
        if declined is not None:
            tables["handover_declined"].extra = {"rate": f"{100 * declined / sent:.0f} %"}
    tables["handover_days"] = Table.of(
        "handover_days",
        _("Days from handover to the first meeting offered"),
        {
            **{f"<{b}": f"< {b}" for b in MEETING_BUCKETS_DAYS},
            f"{MEETING_BUCKETS_DAYS[-1]}+": f"{MEETING_BUCKETS_DAYS[-1]}+",
        },
        _by_key(f, "handover_days"),
    )
    return tables


def capacity_table(f: Filters, arrivals_by_hour: dict[str, int]) -> Table:
    """Per hour of the day, averaged over the days in range: conversations going on at once
    (active minutes / 60), staff on and their places (from the minute samples)."""
    per_hour: dict[str, float] = {}
    for moment, minutes in _by_local_hour(f, "active_minutes"):
        key = f"{moment.hour:02d}"
        per_hour[key] = per_hour.get(key, 0) + minutes / 60 / f.days
    start, end = _utc_range(f)
    samples = CapacitySample.objects.filter(minute__gte=start, minute__lt=end)
    if f.place.startswith("pool:"):
        samples = samples.filter(pool_id=int(f.place.split(":")[1]))
    elif f.place.startswith("site:"):
        site = Site.objects.filter(pk=int(f.place.split(":")[1])).first()
        samples = samples.filter(pool_id=site.pool_id if site and site.pool_id else -1)
    staff: dict[str, float] = {}
    places_: dict[str, float] = {}
    totals: dict[str, list] = {}
    for row in samples.values("minute", "staff_on", "places"):
        key = f"{row['minute'].astimezone(OSLO).hour:02d}"
        totals.setdefault(key, []).append((row["staff_on"], row["places"]))
    minutes_per_day = 60 * f.days
    for key, rows in totals.items():
        # Minutes without a sample count as nobody on (nobody ticked: closed).
        staff[key] = sum(s for s, _p in rows) / minutes_per_day
        places_[key] = sum(p for _s, p in rows) / minutes_per_day
    labels = {f"{h:02d}": f"{h:02d}" for h in range(24)}
    # An hour with fewer than THRESHOLD arrivals in the range would let an average point at a
    # few conversations: its demand figure is hidden.
    shown, _total = suppress({k: arrivals_by_hour.get(k, 0) for k in labels})
    demand = {k: (round(per_hour.get(k, 0), 2) if shown[k] is not None else None) for k in labels}
    table = Table(
        name="capacity",
        title=_("Capacity and demand by hour of the day (average)"),
        labels=labels,
        values=demand,
        total=None,
        note=_("Conversations going on at once, staff on and their chat places, per hour."),
    )
    table.extra = {
        "staff_on": {k: round(staff.get(k, 0), 2) for k in labels},
        "places": {k: round(places_.get(k, 0), 2) for k in labels},
    }
    return table


def feedback_tables(f: Filters) -> dict[str, Table]:
    from chat.models import Feedback

    titles = {
        "understood": _("“I felt understood and respected”"),
        "talked_about": _("“We talked about what I wanted to talk about”"),
        "form": _("“The way we talked suited me”"),
        "useful": _("“All in all, the chat was useful for me”"),
    }
    tables = {}
    for statement in Feedback.STATEMENTS:
        answers = _by_key(f, f"fb_{statement}")
        table = Table.of(
            f"fb_{statement}",
            titles[statement],
            {str(score): str(score) for score in range(6)},
            answers,
            note=_("0 = no, not much · 5 = yes, a lot"),
        )
        n = sum(answers.values())
        if n >= THRESHOLD:
            table.extra = {"mean": sum(int(k) * v for k, v in answers.items()) / n}
        tables[table.name] = table
    return tables


# -- now ----------------------------------------------------------------------------------------


def now_panel(pool: Pool | None = None) -> dict:
    """The live panel: waiting, longest wait, staff on, free places, the estimate for a new
    request, and whether it passes YOUTHHUB_CAPACITY_ALERT_MINUTES. Operational figures for
    supervisors (the same the staff queue shows), not published statistics."""
    from dropin import selectors as queue

    pool = pool or queue.default_pool()
    overview = queue.overview(pool=pool)
    waiting = queue.waiting_since_by_pool().get(pool.pk if pool else 0, [])
    now = timezone.now()
    staff = [s for s in queue.on_duty(now) if pool is None or pool.pk in s.pool_ids]
    eta = overview["any"].get("eta_seconds")
    alert_after = settings.YOUTHHUB_CAPACITY_ALERT_MINUTES * 60
    return {
        "pool": pool.name if pool else "",
        "queued": len(waiting),
        "longest_wait_seconds": int((now - min(waiting)).total_seconds()) if waiting else 0,
        "staff_on": len(staff),
        "places": sum(s.capacity for s in staff),
        "busy": sum(s.busy for s in staff),
        "eta_seconds": eta,
        "alert": bool(waiting) and (eta is None or eta > alert_after),
        "alert_minutes": settings.YOUTHHUB_CAPACITY_ALERT_MINUTES,
        "at": now.isoformat(),
    }
