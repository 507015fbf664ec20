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

from chat.models import ABOUT_QUESTIONS, STAFF_TAGS, TOPICS, Triage
from dropin.hours import OSLO
from dropin.models import Pool, Site
from youthhub.staff.models import Role

from .models import CapacityHour, Count
from .services import (
    ABOUT_METRICS,
    DURATION_BUCKETS,
    MEETING_BUCKETS_DAYS,
    WAIT_BUCKETS,
    bucket_keys,
)
from .suppression import THRESHOLD, Knowledge, Relation, hide, suppress

__all__ = ["THRESHOLD", "suppress"]

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


@dataclass
class Table:
    name: str
    title: str
    labels: dict[str, str]  # key -> label, in display order
    values: dict[str, int | None] = field(default_factory=dict)  # after suppression
    total: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)  # per-row columns (capacity: staff on, places)
    # Derived figures (median, mean, share ...): the text shown, or None when withheld.
    derived: dict[str, str | None] = field(default_factory=dict)
    has_total: bool = True

    def rows(self) -> list[tuple[str, str]]:
        """(label, shown value) with "<5" for hidden ones."""
        return [(self.labels[key], display(self.values[key])) for key in self.labels]

    def cells(self) -> list[list[str]]:
        """The table as the page and the CSV show it: label, value, then per-row extras
        (the capacity table's staff on and places)."""
        per_row = list(self.extra)
        return [
            [self.labels[key], display(self.values[key])]
            + [display(self.extra[name][key]) for name in per_row]
            for key in self.labels
        ]

    def footer(self) -> list[list[str]]:
        """The rows under the cells, on the page and in the CSV alike: the total, then the
        derived figures ("–" where the shown numbers do not decide them)."""
        rows = [[_("Total"), display(self.total)]] if self.has_total else []
        labels = derived_labels()
        return rows + [[labels[key], text or "–"] for key, text in self.derived.items()]


def derived_labels() -> dict[str, str]:
    return {
        "median": _("Median"),
        "p90": _("90th percentile"),
        "mean": _("Mean"),
        "accepted_share": _("Share the service said yes to"),
        "declined_share": _("Share the service said no to"),
    }


class Page:
    """The tables of one page, their raw counts and the sums that tie them together; `finish`
    hides small numbers over the whole page at once (`suppression.hide`)."""

    def __init__(self):
        self.values: dict[str, int] = {}
        self.relations: list[Relation] = []
        self.drafts: dict[str, dict] = {}

    def table(self, name, title, labels: dict[str, str], counts: dict[str, int], *,
              total: str = "", note: str = "") -> None:  # fmt: skip
        """A table whose cells add up to its total; tables that count the same people name
        the same `total` node ("contacts"), or a cell of another table ("requested:role")."""
        total = total or f"{name}:"
        cells = tuple(f"{name}:{key}" for key in labels)
        for key, node in zip(labels, cells, strict=True):
            self.values[node] = counts.get(key, 0)
        self.values.setdefault(total, sum(counts.get(key, 0) for key in labels))
        self.relations.append(Relation(total, cells))
        self.drafts[name] = {"title": title, "labels": labels, "total": total, "note": note}

    def relate(self, whole: str, parts: list[str], value: int | None = None) -> None:
        """Another exact sum between nodes (`value` for a node no table shows)."""
        if value is not None:
            self.values.setdefault(whole, value)
        self.relations.append(Relation(whole, tuple(parts)))

    def finish(self) -> tuple[dict[str, "Table"], Knowledge]:
        shown = {f"{name}:{key}" for name, d in self.drafts.items() for key in d["labels"]}
        shown |= {d["total"] for d in self.drafts.values()}
        knowledge = hide(self.values, self.relations, always_hidden=set(self.values) - shown)

        def value(node):
            return None if node in knowledge.hidden else self.values[node]

        tables = {
            name: Table(
                name=name,
                title=d["title"],
                labels=d["labels"],
                values={key: value(f"{name}:{key}") for key in d["labels"]},
                total=value(d["total"]),
                note=d["note"],
            )
            for name, d in self.drafts.items()
        }
        return tables, knowledge

    def quantile(self, knowledge: Knowledge, name: str, q: float) -> str | None:
        """The label of the bucket holding the q-quantile, if the shown numbers decide it."""
        d = self.drafts[name]
        keys = list(d["labels"])
        index = knowledge.decides_quantile(d["total"], [f"{name}:{k}" for k in keys], q)
        return None if index is None else d["labels"][keys[index]]

    def mean(self, knowledge: Knowledge, name: str) -> str | None:
        """The mean of a table whose keys are scores, if the shown numbers decide it."""
        d = self.drafts[name]
        cells = {key: f"{name}:{key}" for key in d["labels"]}
        n = self.values[d["total"]]
        if n < THRESHOLD or not knowledge.decides_mean(d["total"], list(cells.values())):
            return None
        return f"{sum(int(k) * self.values[c] for k, c in cells.items()) / n:.1f}"

    def share(self, knowledge: Knowledge, part: str, whole: str) -> str | None:
        """part / whole in whole per cent, if both are known from what is shown."""
        if part not in knowledge.known or whole not in knowledge.known:
            return None
        if self.values[whole] < THRESHOLD:
            return None
        return f"{100 * self.values[part] / self.values[whole]:.0f} %"


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


def _minutes_label(key: str) -> str:
    return _("{range} min").format(range=key.replace("-", "–"))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def figures(f: Filters) -> dict[str, Table]:
    """Every table of the page, small numbers hidden over the page as a whole."""
    page = Page()
    arrivals = _by_local_hour(f, "contacts")
    by_day: dict[str, int] = {}
    by_weekday: dict[str, int] = {}
    by_hour: dict[str, int] = {}
    for moment, n in arrivals:
        by_day[moment.date().isoformat()] = by_day.get(moment.date().isoformat(), 0) + n
        wd = WEEKDAYS[moment.weekday()]
        by_weekday[wd] = by_weekday.get(wd, 0) + n
        by_hour[f"{moment.hour:02d}"] = by_hour.get(f"{moment.hour:02d}", 0) + n
    days = [f.start + timedelta(days=i) for i in range(f.days)]
    page.table(
        "by_day",
        _("Contacts by day"),
        {d.isoformat(): d.isoformat() for d in days},
        by_day,
        total="contacts",
    )
    weekday_names = [
        _("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"),
        _("Saturday"), _("Sunday"),
    ]  # fmt: skip
    page.table(
        "by_weekday",
        _("Contacts by weekday"),
        dict(zip(WEEKDAYS, weekday_names, strict=True)),
        by_weekday,
        total="contacts",
    )
    for number, weekday in enumerate(WEEKDAYS):  # a weekday is the sum of its days
        page.relate(
            f"by_weekday:{weekday}",
            [f"by_day:{d.isoformat()}" for d in days if d.weekday() == number],
        )
    page.table(
        "by_hour",
        _("Contacts by hour of the day"),
        {f"{h:02d}": f"{h:02d}" for h in range(24)},
        by_hour,
        total="contacts",
    )
    total = sum(by_day.values())
    after = sum(_by_key(f, "after_hours").values())
    page.table(
        "after_hours",
        _("Asked while nobody was on"),
        {"open": _("While open"), "after": _("While closed (left a message)")},
        {"open": total - after, "after": after},
        total="contacts",
    )
    outcomes = _by_key(f, "outcome")
    page.table(
        "outcome",
        _("How requests ended"),
        {
            "ended": _("Talked"),
            "abandoned": _("Left the queue"),
            "no_show": _("Drop-in ticket called, nobody came"),
        },
        outcomes,
        total="contacts",
    )
    page.table(
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
        total="contacts",
    )
    # Everyone answered has a waiting time: those who talked and the drop-in tickets called
    # (no-shows included); those who left the queue have none.
    wait_keys = bucket_keys(WAIT_BUCKETS)
    page.table(
        "wait",
        _("Waiting time to the first answer"),
        {k: _minutes_label(k) for k in wait_keys},
        _by_key(f, "wait"),
        total="answered",
        note=_("Median and 90th percentile are read from these buckets."),
    )
    page.relate("contacts", ["answered", "outcome:abandoned"])
    page.relate("answered", ["outcome:ended", "outcome:no_show"])
    duration_keys = bucket_keys(DURATION_BUCKETS)
    page.table(
        "duration",
        _("Length of conversations"),
        {k: _minutes_label(k) for k in duration_keys},
        _by_key(f, "duration"),
        total="outcome:ended",  # every conversation that ended has a length
    )
    page.table(
        "requested",
        _("Whom youth asked for"),
        {"person": _("A named person"), "role": _("A role"), "any": _("First available")},
        _by_key(f, "requested"),
        total="contacts",
    )
    page.table(
        "role",
        _("Roles asked for"),
        {r: str(label) for r, label in Role.choices},
        _by_key(f, "role"),
        total="requested:role",
    )
    page.table(
        "topic",
        _("Topics youth chose"),
        {**{k: str(v) for k, v in TOPICS.items()}, "none": _("No topic chosen")},
        _by_key(f, "topic"),
        total="contacts",
    )
    page.table(
        "tag",
        _("Topics staff tagged"),
        {k: str(v) for k, v in STAFF_TAGS.items()},
        _by_key(f, "tag"),
        note=_("A conversation can have several tags."),
    )
    page.table(
        "triage", _("Triage colour"), {k: str(v) for k, v in Triage.choices}, _by_key(f, "triage")
    )
    crisis = sum(_by_key(f, "crisis").values())
    page.table(
        "crisis",
        _("Crisis flags"),
        {"crisis": _("Said they were not safe"), "other": _("Other requests")},
        {"crisis": crisis, "other": total - crisis},
        total="contacts",
    )
    about_tables(page, f)
    handover_tables(page, f)
    feedback_tables(page, f)
    tables, knowledge = page.finish()
    tables["wait"].derived = {
        "median": page.quantile(knowledge, "wait", 0.5),
        "p90": page.quantile(knowledge, "wait", 0.9),
    }
    tables["duration"].derived = {"median": page.quantile(knowledge, "duration", 0.5)}
    tables["handover_outcome"].derived = {
        "accepted_share": page.share(knowledge, "handovers_accepted", "handovers"),
        "declined_share": page.share(knowledge, "handover_outcome:declined", "handovers"),
    }
    for name in tables:
        if name.startswith("fb_"):
            tables[name].derived = {"mean": page.mean(knowledge, name)}
    tables["capacity"] = capacity_table(f, tables["by_hour"])
    return tables


def about_tables(page: Page, f: Filters) -> None:
    """The optional questions: age band, gender, how they heard of us. Each table counts
    those who answered that question (any may be skipped), so its total stands alone."""
    titles = {
        "age": _("Age (optional question)"),
        "gender": _("Gender (optional question)"),
        "heard": _("How they heard of us (optional question)"),
    }
    # Counted per pool and day only (stats.services.about_cells): an arena or a channel
    # filter has none of them, which the note says rather than showing nobody answered.
    by_place = f.channel or f.place.startswith("site:")
    note = (
        _("Counted only per region and day, never per arena or channel: choose “Everywhere”.")
        if by_place
        else _("Only those who chose to answer.")
    )
    for name, choices in ABOUT_QUESTIONS.items():
        page.table(
            f"about_{name}",
            titles[name],
            {key: str(label) for key, label in choices.items()},
            {} if by_place else _by_key(f, ABOUT_METRICS[name]),
            note=note,
        )


def handover_tables(page: Page, f: Filters) -> None:
    """Handovers sent by kind of service, and how they went (the same handovers): said yes
    (first meeting held or not yet), said no, or no answer; days from sending to the first
    meeting offered. Kind and outcome are two tables, not one cross table, whose margins
    would give small cells away."""
    from youthhub.handover.models import ServiceKind

    sent = _by_key(f, "handover_sent")
    page.table(
        "handover_sent",
        _("Handovers sent, by kind of service"),
        {str(k): str(label) for k, label in ServiceKind.choices},
        sent,
        total="handovers",
    )
    n_sent = sum(sent.values())
    accepted = sum(_by_key(f, "handover_accepted").values())
    declined = sum(_by_key(f, "handover_declined").values())
    met = min(sum(_by_key(f, "handover_met").values()), accepted)
    page.table(
        "handover_outcome",
        _("How handovers went"),
        {
            "met": _("Said yes, first meeting held"),
            "accepted": _("Said yes, meeting not held yet"),
            "declined": _("Said no, with an alternative"),
            "open": _("No answer yet, withdrawn or expired"),
        },
        {
            "met": met,
            "accepted": accepted - met,
            "declined": declined,
            "open": max(n_sent - accepted - declined, 0),
        },
        total="handovers",
    )
    # "Said yes" is a group of two cells that another table shows whole: the sum of the group
    # and the sum it is part of (as answered / left the queue for the outcomes).
    page.relate(
        "handovers_accepted",
        ["handover_outcome:met", "handover_outcome:accepted"],
        value=accepted,
    )
    page.relate(
        "handovers",
        ["handovers_accepted", "handover_outcome:declined", "handover_outcome:open"],
    )
    page.table(
        "handover_days",
        _("Days from handover to the first meeting offered"),
        {
            **{f"<{b}": f"< {b}" for b in MEETING_BUCKETS_DAYS},
            f"{MEETING_BUCKETS_DAYS[-1]}+": f"{MEETING_BUCKETS_DAYS[-1]}+",
        },
        _by_key(f, "handover_days"),
        total="handovers_accepted",  # every yes names its first meeting
    )


def capacity_table(f: Filters, by_hour: Table) -> Table:
    """Per hour of the day, averaged over the days in range: conversations going on at once
    (active minutes / 60), staff on and their places (from the hourly capacity cells)."""
    per_hour: dict[str, float] = {}
    for moment, minutes in _by_local_hour(f, "active_minutes"):
        key = f"{moment.hour:02d}"
        per_hour[key] = per_hour.get(key, 0) + minutes / 60 / f.days
    start, end = _utc_range(f)
    hours = CapacityHour.objects.filter(hour__gte=start, hour__lt=end)
    if f.place.startswith("pool:"):
        hours = hours.filter(pool_id=int(f.place.split(":")[1]))
    elif f.place.startswith("site:"):
        site = Site.objects.filter(pk=int(f.place.split(":")[1])).first()
        hours = hours.filter(pool_id=site.pool_id if site and site.pool_id else -1)
    staff: dict[str, float] = {}
    places_: dict[str, float] = {}
    # Minutes nobody sampled count as nobody on (no worker ticked: closed).
    minutes_per_day = 60 * f.days
    for row in hours.values("hour", "staff_minutes", "place_minutes"):
        key = f"{row['hour'].astimezone(OSLO).hour:02d}"
        staff[key] = staff.get(key, 0) + row["staff_minutes"] / minutes_per_day
        places_[key] = places_.get(key, 0) + row["place_minutes"] / minutes_per_day
    labels = by_hour.labels
    # An hour whose arrivals are hidden would let an average point at a few conversations:
    # its demand figure is hidden too.
    demand = {
        k: (round(per_hour.get(k, 0), 2) if by_hour.values[k] is not None else None) for k in labels
    }
    table = Table(
        name="capacity",
        title=_("Capacity and demand by hour of the day (average)"),
        labels=labels,
        values=demand,
        total=None,
        note=_("Conversations going on at once, staff on and their chat places, per hour."),
        has_total=False,
    )
    table.extra = {
        "staff_on": {k: round(staff.get(k, 0), 2) for k in labels},
        "places": {k: round(places_.get(k, 0), 2) for k in labels},
    }
    return table


def feedback_tables(page: Page, f: Filters) -> None:
    from chat.models import Feedback

    titles = {
        "understood": _("“I felt understood and respected”"),
        "talked_about": _("“We talked about what I wanted to talk about”"),
        "form": _("“The way we talked suited me”"),
        "useful": _("“All in all, the chat was useful for me”"),
    }
    for statement in Feedback.STATEMENTS:
        page.table(
            f"fb_{statement}",
            titles[statement],
            {str(score): str(score) for score in range(6)},
            _by_key(f, f"fb_{statement}"),
            note=_("0 = no, not much · 5 = yes, a lot"),
        )


# -- now ----------------------------------------------------------------------------------------


def now_panel(place: str = "") -> dict:
    """The live panel for the page's place filter ("" everywhere, "pool:<id>" a pool's chat
    and its arenas' drop-in, "site:<id>" one arena's drop-in; checked by `parse_filters`):
    waiting, longest wait, staff on, places, the estimate for a new first-available request
    and whether it passes YOUTHHUB_CAPACITY_ALERT_MINUTES. Operational figures for
    supervisors (the same the staff queue shows), not published statistics."""
    from chat.models import Conversation
    from dropin import selectors as queue

    now = timezone.now()
    kind, _sep, raw_id = place.partition(":")
    site, pools = None, []
    if kind == "site":
        site = Site.objects.get(pk=int(raw_id))
    elif kind == "pool":
        pools = list(Pool.objects.filter(pk=int(raw_id)))
    else:
        pools = list(Pool.objects.order_by("pk"))
    if site is not None:
        waiting = list(
            Conversation.objects.filter(
                state=Conversation.State.QUEUED, site_id=site.pk
            ).values_list("created_at", flat=True)
        )
        staff = [s for s in queue.on_duty(now) if site.pk in s.site_ids]
        etas = [queue.overview(site=site)["any"].get("eta_seconds")]
        name = site.name
    else:
        by_pool = queue.waiting_since_by_pool()
        ids = {pool.pk for pool in pools}
        waiting = [t for pool_id in ids for t in by_pool.get(pool_id, [])]
        staff = [s for s in queue.on_duty(now) if s.pool_ids & ids]
        etas = [queue.overview(pool=pool)["any"].get("eta_seconds") for pool in pools]
        name = pools[0].name if kind == "pool" else _("Everywhere")
    # Everywhere: the longest estimate of any pool (unknown if nobody is on in one of them).
    eta = None if not etas or None in etas else max(etas)
    alert_after = settings.YOUTHHUB_CAPACITY_ALERT_MINUTES * 60
    return {
        "place": name,
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
