"""Weeks of realistic anonymous traffic, replayed through the real services on a simulated clock.

`simulate(start=..., days=..., seed=..., load=...)` drives the demo pool ("vestfold") and arena
("tonsberg") of `seed_demo` (run first if the pool is missing) with its five demo staff. Every
step goes through the same service a socket or a view would call: `youth_session_create` +
`queue_request`, `kiosk_ticket_take`, `queue_change_target`, `queue_crisis`, `queue_accept`,
`queue_claim_next`, `message_send`, `dropin_arrived`, `dropin_no_show`, `conversation_end`,
`feedback_give`, `staff_set_status` and `queue_tick`. Nothing is written to the statistics
directly: the `Count` cells and `CapacityHour` rows are what those services record.

Simulated time
    Events are replayed in time order inside `SimulatedClock`, which sets
    `django.utils.timezone.now` (what the services and every `auto_now_add` field read) and
    `youthhub.ratelimit.clock` (the youth-session limit counts per simulated minute) to the
    event's instant and restores both in `finally`. `queue_tick(now=t)` runs every simulated
    minute while a staff member is on or a conversation is active (switch offers, no-shows,
    the capacity sample), every 15 minutes while only messages left after hours wait, and not
    at all when nothing is open. The patch is process-wide: run the simulation in its own
    process (the management command), never inside a serving worker.
Live timers
    The serving workers' timers run on the real clock: one would end a called ticket of the
    simulated past as a no-show between two simulated steps. The run holds them
    (`dropin.services.timers_hold`, renewed every 30 s, two minutes ahead, released at the end),
    so a simulation may run beside a live server; a crashed run frees them within two minutes.
Presence
    A staff member is "on" only with a dashboard seen within YOUTHHUB_STAFF_PRESENCE_SECONDS.
    The simulation plays the dashboards' pings: at a tick, `seen_at` of everyone on shift who
    would otherwise drop out before the next tick is set to the simulated minute (one UPDATE,
    as `dropin.services.staff_seen` writes, without its per-person fan-out; every other minute
    with the default 120 s). Staff profiles that are on when the run starts are set offline for
    the run and restored afterwards, so real presence cannot leak into the simulated past.
Fan-out
    Services publish after commit (`chat.events.publish_on_commit` / `publish_many_on_commit`).
    Nobody listens to a simulated past, and building the queue frames after every commit was
    40 % of the run time, so by default both are no-ops for the run (`fanout=True` keeps them).
    Either way the default channel layer is swapped for a fresh in-memory one, so no simulated
    frame can reach a real dashboard through Redis. Both are restored afterwards. The rows
    written are the same with or without the fan-out.
SQLite
    Commits run with `PRAGMA synchronous=NORMAL` during the run (safe in WAL mode: a power cut
    can lose the last commits, never corrupt the file); the previous value is restored.
Privacy
    Aliases come from the service, message texts are one fixed placeholder, feedback carries
    scores only (no text), kiosk return codes are thrown away.

The shape (per hour, at `load` 1; each parameter below is a module constant)
    chat requests  weekdays follow the shape of `dropin.simulation.ARRIVALS_PER_HOUR` in 12-18
                   at AFTERNOON_SCALE (90 a day, after-school peak 25/h), plus a little demand
                   in the morning, evening and night (about 30);
                   hours of that curve when the arena is closed (Mon/Wed/Fri 16-18, public
                   holidays) keep CLOSED_SHARE of it. Weekends and holidays: WEEKEND_CHAT.
                   Requests while nobody is on are after-hours messages.
    drop-in        DROPIN_PER_HOUR while the arena is open; KIOSK_SHARE from the kiosk tablet,
                   the rest from the youth's own phone.
    choices        first available / a role / a named person (CHOICE_*); topic given in
                   TOPIC_SHARE of chats (TOPIC_WEIGHTS); crisis at request CRISIS_AT_REQUEST,
                   raised while waiting CRISIS_WHILE_WAITING.
    waiting        patience lognormal (median `PATIENCE_MEDIAN`, as dropin.simulation); at the
                   arena PATIENCE_DROPIN; after hours AFTER_HOURS_WAITS leave the message until
                   staff open, the others leave. A named request offered "first available"
                   switches with SWITCH_SHARE.
    staff          LINEUPS per weekday, clamped to the arena's opening hours of the date (none on
                   closed days); each takes a free place 30-90 s after it frees (30 % by clicking
                   a row: `queue_accept`, else "take next": `queue_claim_next`); nobody takes more
                   while in a face-to-face drop-in talk; staff whose shift ends at closing stay
                   up to STAY_AFTER_CLOSE for youth who asked before closing.
    talking        lognormal durations (`DURATION_MEAN`, crisis and drop-in longer, an answered
                   after-hours message shorter); MESSAGES per chat; staff end STAFF_ENDS with
                   STAFF_TAGS and a triage colour, ask for feedback in FEEDBACK_ASKED, youth
                   answer FEEDBACK_ANSWERED with 0-5 scores.
    drop-in        a called youth comes within 1-4 min (ARRIVES), otherwise a no-show: marked by
                   staff (NOSHOW_BY_STAFF) or by the timer after YOUTHHUB_NOSHOW_SECONDS.

handovers      before ending a yellow or red chat, staff hand a share (HANDOVER_SHARE) over to
                   the youth health clinic (yellow) or BUP (red) through the real services:
                   draft, propose, the youth's answer (HANDOVER_CONSENT yes; the rest no), and
                   1–5 days later the demo partner's accept (a first meeting 2–20 days on) or
                   decline with an alternative (HANDOVER_ACCEPT); most accepted ones are met.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time as wallclock
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone as dj_timezone

from chat import events
from chat import services as chat
from chat.actors import Actor
from chat.errors import ServiceError
from chat.models import STAFF_TAGS, TOPICS, Conversation, Youth
from dropin import services as queue
from dropin.hours import OSLO, UTC, Schedule, local_moment
from dropin.models import Pool, Site
from dropin.simulation import (
    ACCEPT_LATENCY,
    ARRIVALS_PER_HOUR,
    DURATION_MEAN,
    DURATION_SIGMA,
    PATIENCE_MEDIAN,
    PATIENCE_SIGMA,
)
from youthhub import ratelimit
from youthhub.staff.models import StaffProfile, Status

DEMO_POOL = "vestfold"
DEMO_SITE = "tonsberg"
MAX_WEEKS = 8
MINUTE = timedelta(minutes=1)

# -- demand --------------------------------------------------------------------------------------
# Chat requests per local hour on a weekday: the shape of the estimate simulation's day
# (dropin.simulation.ARRIVALS_PER_HOUR: quiet at noon, after-school peak, evening bump) at
# AFTERNOON_SCALE of its level, which saturates the five demo staff, plus a little demand in
# the morning (school hours), the evening and the night: 121 requests on a Tuesday.
AFTERNOON_SCALE = 0.65
WEEKDAY_CHAT: dict[int, float] = {
    0: 0.3, 1: 0.2, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.1, 6: 0.2, 7: 0.5,
    8: 1.0, 9: 1.0, 10: 1.5, 11: 2.0,
    **{hour: rate * AFTERNOON_SCALE for hour, rate in ARRIVALS_PER_HOUR.items()},
    18: 6.0, 19: 5.0, 20: 5.0, 21: 4.0, 22: 3.0, 23: 1.5,
}  # fmt: skip
# Saturday, Sunday and public holidays: about 22 a day, nobody on.
WEEKEND_CHAT: dict[int, float] = {h: (1.5 if 10 <= h <= 22 else 0.2) for h in range(24)}
CLOSED_SHARE = 0.3  # of the afternoon curve when the arena is closed (youth know the hours)
DROPIN_PER_HOUR: dict[int, float] = {12: 0.5, 13: 1, 14: 2, 15: 2.5, 16: 2, 17: 1.5}
KIOSK_SHARE = 0.6  # of drop-in tickets: taken at the tablet (the rest on the youth's phone)

# -- the youth's choices ---------------------------------------------------------------------------
CHOICE_CHAT = {"any": 0.55, "role": 0.30, "staff": 0.15}  # while someone is on
CHOICE_AFTER_HOURS = {"any": 0.85, "role": 0.15}  # nobody on: no named person possible
CHOICE_DROPIN = {"any": 0.70, "role": 0.15, "staff": 0.15}
ROLE_WEIGHTS = {
    "peer": 0.30,
    "health_nurse": 0.25,
    "psychologist": 0.25,
    "youth_worker": 0.12,
    "social_worker": 0.08,
}
PICK_FREE = 0.8  # a named person / role is picked among those with a free place
ROLE_AMONG_ON = 0.85  # otherwise mostly a kind of helper the chooser shows as on
TOPIC_SHARE = 0.75  # chats that name a topic (optional in the form)
TOPIC_SHARE_DROPIN = 0.5  # own-phone tickets (the kiosk asks none)
TOPIC_WEIGHTS = {
    "feelings": 0.30,
    "school": 0.15,
    "friends": 0.15,
    "family": 0.12,
    "body": 0.12,
    "substances": 0.05,
    "other": 0.11,
}
CRISIS_AT_REQUEST = 0.02
# The optional questions while waiting: a share of chat and drop-in requesters answer, each
# question skipped now and then (chat.models.ABOUT_QUESTIONS).
ABOUT_SHARE = 0.4
ABOUT_SKIP = 0.15
ABOUT_WEIGHTS = {
    "age": {"12_15": 3, "16_17": 4, "18_20": 3, "21_25": 2},
    "gender": {"girl": 6, "boy": 3, "other": 1, "not_say": 1},
    "heard": {"school": 4, "friend": 3, "social_media": 3, "health_nurse": 2, "other": 1},
}
CRISIS_WHILE_WAITING = 0.01  # "I'm not safe right now" pressed 1-5 min into the wait

# -- waiting --------------------------------------------------------------------------------------
PATIENCE_DROPIN = (25 * 60, 0.6)  # median seconds, sigma: at the arena people wait longer
PATIENCE_CRISIS = (30 * 60, 0.6)
PATIENCE_AFTER_HOURS = (10 * 60, 0.8)  # for those who do not leave a message
AFTER_HOURS_WAITS = 0.6  # leave the message and come back for the answer
SWITCH_SHARE = 0.6  # named request offered "first available" takes it

# -- staff ----------------------------------------------------------------------------------------
# Weekday -> (username, from hour, to hour or None = closing), clamped to the day's opening.
LINEUPS: dict[int, list[tuple[str, int, int | None]]] = {
    0: [("ingrid", 12, None), ("amir", 12, None), ("jonas", 13, None), ("mona", 12, None)],
    1: [
        ("ingrid", 12, None),
        ("sara", 12, 16),
        ("jonas", 14, None),
        ("amir", 12, None),
        ("mona", 12, 15),
    ],
    2: [("sara", 12, None), ("amir", 12, None), ("jonas", 12, None), ("mona", 12, None)],
    3: [
        ("ingrid", 12, None),
        ("sara", 14, None),
        ("jonas", 12, None),
        ("amir", 14, None),
        ("mona", 12, 16),
    ],
    4: [("ingrid", 12, None), ("sara", 12, None), ("jonas", 13, None), ("mona", 12, None)],
}
ACCEPT_BY_ROW = 0.3  # takes by clicking a row (queue_accept) rather than "take next"
STAY_AFTER_CLOSE = timedelta(minutes=30)

# -- talking --------------------------------------------------------------------------------------
DURATION_CRISIS = 40 * 60
DURATION_AFTER_HOURS = 12 * 60  # answering a message left overnight
DURATION_DROPIN = (30 * 60, 0.5)
MESSAGES = (2, 6)  # per chat, both sides
MESSAGES_AFTER_HOURS = (2, 4)
PLACEHOLDER = "(simulert melding)"  # the only text ever sent
STAFF_ENDS = 0.92  # the rest: the youth leaves the chat
TAGLESS = 0.05
TOPIC_TAG = {
    "school": "school_work",
    "family": "family",
    "friends": "friends",
    "feelings": "stress",
    "body": "body_sexual",
    "substances": "substances",
    "other": "other",
}
EXTRA_TAG = 0.35
TRIAGE = {"green": 0.68, "yellow": 0.27, "red": 0.05}
TRIAGE_CRISIS = {"red": 0.6, "yellow": 0.4}
NO_TRIAGE = 0.07
FEEDBACK_ASKED = 0.55
FEEDBACK_ASKED_DROPIN = 0.3
FEEDBACK_ANSWERED = 0.45
SCORE_WEIGHTS = {0: 2, 1: 3, 2: 5, 3: 15, 4: 35, 5: 40}
SCORE_SKIPPED = 0.08

# -- drop-in --------------------------------------------------------------------------------------
ARRIVES = 0.88
ARRIVAL_DELAY = (45, 240)  # seconds from the call
NOSHOW_BY_STAFF = 0.35
STAFF_NOSHOW_DELAY = (300, 540)


# ---------------------------------------------------------------------------------------------------


class SimulatedClock:
    """Inside `with`, `django.utils.timezone.now()` and the rate limiter's clock return `now`."""

    def __init__(self, now: datetime):
        self.now = now
        self._saved = None

    def set(self, moment: datetime) -> None:
        self.now = moment

    def __enter__(self) -> SimulatedClock:
        self._saved = (dj_timezone.now, ratelimit.clock)
        dj_timezone.now = lambda: self.now
        ratelimit.clock = lambda: self.now.timestamp()
        return self

    def __exit__(self, *exc) -> None:
        dj_timezone.now, ratelimit.clock = self._saved


class _HeldTimers:
    """Hold the live workers' timers for the run (`dropin.services.timers_hold`): a timer on the
    real clock would end the simulation's called tickets as no-shows, or offer switches, between
    two of its steps. The hold runs HOLD ahead of the real clock, renewed every RENEW of the
    run, so a crashed run frees the timers within HOLD."""

    NAME = "simulate_traffic"
    HOLD = timedelta(minutes=2)
    RENEW = 30.0  # seconds of wall clock

    def __enter__(self) -> _HeldTimers:
        self._renewed = -math.inf
        self.renew()
        return self

    def renew(self) -> None:
        if wallclock.monotonic() - self._renewed >= self.RENEW:
            # datetime.now, not timezone.now: the simulated clock patches the latter.
            queue.timers_hold(name=self.NAME, until=datetime.now(UTC) + self.HOLD)
            self._renewed = wallclock.monotonic()

    def __exit__(self, *exc) -> None:
        queue.timers_release(name=self.NAME)


class _QuietFanout:
    """Swap the default channel layer for an in-memory one nobody listens to and (unless
    `fanout`) make the after-commit publishing a no-op."""

    def __init__(self, fanout: bool):
        self.fanout = fanout

    def __enter__(self):
        from channels import DEFAULT_CHANNEL_LAYER
        from channels.layers import InMemoryChannelLayer, channel_layers

        self._alias = DEFAULT_CHANNEL_LAYER
        self._old = channel_layers.set(self._alias, InMemoryChannelLayer())
        self._publish = (events.publish_on_commit, events.publish_many_on_commit)
        if not self.fanout:
            events.publish_on_commit = lambda group, frame: None
            events.publish_many_on_commit = lambda build: None
        return self

    def __exit__(self, *exc) -> None:
        from channels.layers import channel_layers

        events.publish_on_commit, events.publish_many_on_commit = self._publish
        if self._old is None:
            channel_layers.backends.pop(self._alias, None)
        else:
            channel_layers.set(self._alias, self._old)


class _FastSqliteCommits:
    def __enter__(self):
        self._old = None
        if connection.vendor == "sqlite" and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                self._old = cursor.execute("PRAGMA synchronous").fetchone()[0]
                cursor.execute("PRAGMA synchronous=NORMAL")
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA synchronous={int(self._old)}")


@dataclass
class Summary:
    days: int = 0
    first_day: date | None = None
    last_day: date | None = None
    contacts: int = 0  # requests the queue took (chat + drop-in)
    chats: int = 0
    dropins: int = 0
    kiosk: int = 0
    refused: int = 0  # e.g. a drop-in ticket at a closed arena
    after_hours: int = 0
    answered: int = 0  # taken by staff (a drop-in: called)
    abandoned: int = 0
    no_shows: int = 0
    ended: int = 0
    crisis: int = 0
    switched: int = 0
    messages: int = 0
    handovers: int = 0  # proposed to the youth
    handovers_sent: int = 0  # the youth said yes
    feedback_asked: int = 0
    feedback: int = 0
    capacity_samples: int = 0
    about_answered: int = 0
    about_answers: dict = field(default_factory=dict)  # question -> how many answered it
    ticks: int = 0
    still_open: int = 0  # open at the end: messages left after hours, for the next opening
    errors: int = 0  # service refusals the simulation did not expect (should stay 0)
    elapsed_seconds: float = 0.0

    def lines(self) -> list[str]:
        return [f"{f.name}: {getattr(self, f.name)}" for f in fields(self)]


@dataclass
class _Conv:
    id: object
    youth: Youth
    channel: str
    created: datetime
    requested_staff_id: int | None
    requested_role: str
    crisis: bool
    after_hours: bool
    state: str = "queued"
    staff_id: int | None = None
    assigned: datetime | None = None
    will_arrive: bool = True  # drop-in: comes when called
    topic: str = ""


@dataclass
class _Staff:
    user: object
    username: str
    role: str
    capacity: int
    on: bool = False  # available and seen: counts as on duty, takes youth
    shift_end: datetime | None = None  # set once the shift has ended (staying or gone)
    stay_until: datetime | None = None
    chats: set = field(default_factory=set)
    dropins: set = field(default_factory=set)
    claim_pending: bool = False
    seen: datetime | None = None  # seen_at as last written

    @property
    def id(self) -> int:
        return self.user.id


def _lognormal_mean(rng: random.Random, mean: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def _lognormal_median(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


# Handovers: a share of yellow/red chats, to the youth health clinic or BUP (demo partners).
HANDOVER_TO = {"yellow": "hfu-tonsberg", "red": "bup-vestfold"}
HANDOVER_SHARE = 0.25
HANDOVER_CONSENT = 0.8
HANDOVER_ACCEPT = 0.8
HANDOVER_MET = 0.85
HANDOVER_SUMMARY = {
    "concern": "(simulert) Sover dårlig og gruer seg til skolen",
    "own_words": "(simulert) Vil klare hverdagen igjen",
    "assessment": "(simulert) Trenger mer enn lavterskel",
    "interim_plan": "(simulert) Chat hver uke til første møte",
    "who_does_what": "(simulert) Vi følger opp til første møte",
}


def _pick(rng: random.Random, weights: dict):
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def ensure_demo() -> tuple[Pool, Site]:
    """The demo pool and arena (running `seed_demo` when the pool is missing)."""
    if not Pool.objects.filter(slug=DEMO_POOL).exists():
        from io import StringIO

        from django.core.management import call_command

        call_command("seed_demo", stdout=StringIO())
    from youthhub.handover.models import PartnerProfile

    if not PartnerProfile.objects.exists():  # a demo database from before handovers
        from youthhub.handover.services import handover_demo_seed
        from youthhub.staff.management.commands.seed_demo import DEMO_PASSWORD

        handover_demo_seed(password=DEMO_PASSWORD)
    return Pool.objects.get(slug=DEMO_POOL), Site.objects.get(slug=DEMO_SITE)


class Simulation:
    def __init__(
        self,
        *,
        start: date,
        days: int,
        seed: int = 1,
        load: float = 1.0,
        fanout: bool = False,
        log: Callable[[str], None] | None = None,
    ):
        self.fanout = fanout
        if not 1 <= days <= MAX_WEEKS * 7:
            raise ValueError(f"days must be 1..{MAX_WEEKS * 7}")
        if not 0 < load <= 10:
            raise ValueError("load must be in (0, 10]")
        # The vocabularies are the services' own: a renamed topic or tag must show up here.
        if set(TOPIC_WEIGHTS) != set(TOPICS) or not set(TOPIC_TAG.values()) <= set(STAFF_TAGS):
            raise ValueError("TOPIC_WEIGHTS / TOPIC_TAG do not match chat.models")
        self.start, self.days, self.seed, self.load = start, days, seed, load
        self.log = log or (lambda line: None)
        self.rng = {
            name: random.Random(f"{seed}:{name}")
            for name in (
                "arrivals",
                "choice",
                "patience",
                "latency",
                "duration",
                "messages",
                "ending",
                "feedback",
                "handover",
                "dropin",
                "about",  # its own stream: the others draw as before
            )
        }
        self.summary = Summary(days=days, first_day=start, last_day=start + timedelta(days - 1))
        self.events: list = []
        self._seq = itertools.count()
        self.convs: dict = {}  # every conversation of the run, by id
        self.queued: dict = {}  # the waiting ones, oldest first
        self.no_show_due: set = set()  # called tickets nobody will come for
        self.staff: dict[int, _Staff] = {}
        self.next_tick: datetime | None = None
        self.horizon: datetime | None = None

    # -- the event queue ----------------------------------------------------------------------

    def at(self, moment: datetime, kind: str, *payload, priority: int = 5) -> None:
        """Schedule `kind` at `moment`; at one instant lower priorities run first."""
        heapq.heappush(self.events, (moment, priority, next(self._seq), kind, payload))

    # -- set-up -------------------------------------------------------------------------------

    def _plan(self, site: Site) -> None:
        arrivals = self.rng["arrivals"]
        choice = self.rng["choice"]
        for offset in range(self.days):
            day = self.start + timedelta(days=offset)
            schedule = Schedule.for_sites([site], local_moment(day, time(12)))
            openings = schedule.intervals_on(day)
            weekday_curve = day.weekday() < 5 and bool(openings)
            curve = WEEKDAY_CHAT if weekday_curve else WEEKEND_CHAT
            for hour in range(24):
                begin = local_moment(day, time(hour))
                end = (
                    local_moment(day, time(hour + 1))
                    if hour < 23
                    else local_moment(day + timedelta(days=1), time(0))
                )
                if end <= begin:
                    continue
                is_open = schedule.is_open(begin + (end - begin) / 2)
                rate = curve[hour]
                if weekday_curve and hour in ARRIVALS_PER_HOUR and not is_open:
                    rate *= CLOSED_SHARE
                for moment in self._poisson(arrivals, begin, end, rate * self.load):
                    self.at(moment, "arrive", "chat", priority=6)
                if is_open:
                    for moment in self._poisson(
                        arrivals, begin, end, DROPIN_PER_HOUR.get(hour, 0) * self.load
                    ):
                        kiosk = choice.random() < KIOSK_SHARE
                        self.at(moment, "arrive", "kiosk" if kiosk else "dropin", priority=6)
            if day.weekday() in LINEUPS and openings:
                opens, closes = openings[0][0], openings[-1][1]
                for username, from_hour, to_hour in LINEUPS[day.weekday()]:
                    s = self._by_name.get(username)
                    if s is None:
                        continue
                    begin = max(opens, local_moment(day, time(from_hour)))
                    end = (
                        closes if to_hour is None else min(closes, local_moment(day, time(to_hour)))
                    )
                    if begin < end:
                        self.at(begin, "shift_start", s.id, priority=1)
                        self.at(end, "shift_end", s.id, end >= closes, priority=0)

    @staticmethod
    def _poisson(rng: random.Random, begin: datetime, end: datetime, per_hour: float):
        if per_hour <= 0:
            return
        span = (end - begin).total_seconds()
        t = rng.expovariate(per_hour / 3600)
        while t < span:
            yield begin + timedelta(seconds=t)
            t += rng.expovariate(per_hour / 3600)

    # -- running ------------------------------------------------------------------------------

    def run(self) -> Summary:
        started = self._started = wallclock.monotonic()
        pool, site = ensure_demo()
        self.pool, self.site = pool, site
        from youthhub.staff.management.commands.seed_demo import DEMO_STAFF

        usernames = [username for username, *_ in DEMO_STAFF]
        profiles = (
            StaffProfile.objects.filter(
                user__username__in=usernames, user__is_active=True, sites=site
            )
            .select_related("user")
            .order_by("user__username")
        )
        for p in profiles:
            self.staff[p.user_id] = _Staff(
                user=p.user, username=p.user.username, role=p.role, capacity=p.capacity
            )
        self._by_name = {s.username: s for s in self.staff.values()}
        self.site_roles = set(
            StaffProfile.objects.filter(sites=site, user__is_active=True).values_list(
                "role", flat=True
            )
        )
        self._plan(site)
        first = local_moment(self.start, time(0))
        end_of_run = local_moment(self.start + timedelta(days=self.days), time(0))
        # Follow-ups (chats running past midnight) may run on, but never into the real future.
        self.horizon = min(end_of_run + timedelta(hours=12), dj_timezone.now())
        with _HeldTimers() as self.held:
            # Everyone on now (in real time) would count as on in the simulated past: set them
            # offline for the run; the demo staff too. Restored exactly afterwards.
            saved = list(
                StaffProfile.objects.filter(
                    Q(status__in=(Status.AVAILABLE, Status.BUSY)) | Q(user_id__in=list(self.staff))
                ).values_list("pk", "status", "seen_at")
            )
            StaffProfile.objects.filter(pk__in=[pk for pk, *_ in saved]).update(
                status=Status.OFFLINE
            )
            try:
                with (
                    _QuietFanout(self.fanout),
                    _FastSqliteCommits(),
                    SimulatedClock(first) as clock,
                ):
                    self.clock = clock
                    self._loop()
            finally:
                for pk, status, seen_at in saved:
                    StaffProfile.objects.filter(pk=pk).update(status=status, seen_at=seen_at)
        self.summary.still_open = sum(c.state in ("queued", "active") for c in self.convs.values())
        self.summary.elapsed_seconds = round(wallclock.monotonic() - started, 1)
        return self.summary

    def _loop(self) -> None:
        day = None
        while self.events:
            moment = self.events[0][0]
            if self.next_tick is not None and self.next_tick <= moment:
                moment = self.next_tick
            if moment > self.horizon:
                break
            if moment == self.next_tick:  # a tick comes before the events of its minute
                self._tick(moment)
                continue
            _, _, _, kind, payload = heapq.heappop(self.events)
            local_day = moment.astimezone(OSLO).date()
            if local_day != day:
                day = local_day
                elapsed = wallclock.monotonic() - self._started
                self.log(f"{day}: {self.summary.contacts} contacts so far ({elapsed:.1f} s)")
            self.clock.set(moment)
            self.held.renew()
            try:
                with transaction.atomic():
                    getattr(self, f"_on_{kind}")(moment, *payload)
            except ServiceError as exc:  # a refusal the mirror did not foresee: count it
                self.summary.errors += 1
                self.log(f"{moment:%Y-%m-%d %H:%M:%S} {kind}: {exc.code}")
            self._plan_tick(moment)

    def _busy(self) -> bool:
        return any(s.on or s.chats or s.dropins for s in self.staff.values())

    def _tick_after(self, moment: datetime) -> datetime | None:
        """Every minute while staff are on or a conversation is active, each quarter hour
        while only messages left after hours wait, never when nothing is open."""
        base = moment.replace(second=0, microsecond=0)
        if self._busy():
            return base + MINUTE
        if self.queued:
            return base + timedelta(minutes=15 - base.minute % 15)
        return None

    def _plan_tick(self, moment: datetime) -> None:
        candidate = self._tick_after(moment)
        if candidate is not None and (self.next_tick is None or candidate < self.next_tick):
            self.next_tick = candidate

    def _tick(self, minute: datetime) -> None:
        self.clock.set(minute)
        # The open dashboards' pings: refresh whoever would drop out of "on now" before the
        # next tick (every other minute with the default 120 s).
        presence = timedelta(seconds=settings.YOUTHHUB_STAFF_PRESENCE_SECONDS)
        stale = [s for s in self.staff.values() if s.on and minute + MINUTE - s.seen > presence]
        if stale:
            StaffProfile.objects.filter(user_id__in=[s.id for s in stale]).update(seen_at=minute)
            for s in stale:
                s.seen = minute
        result = queue.queue_tick(now=minute)
        self.summary.ticks += 1
        self.summary.capacity_samples += result["capacity_samples"]
        if result["no_shows"]:
            self._sync_no_shows(minute)
        self.next_tick = self._tick_after(minute)

    def _sync_no_shows(self, moment: datetime) -> None:
        """Tickets the timer ended as no-show (queue_tick reports how many, not which)."""
        if not self.no_show_due:
            return
        gone = Conversation.objects.filter(
            id__in=list(self.no_show_due), state=Conversation.State.NO_SHOW
        ).values_list("id", flat=True)
        for cid in gone:
            self._closed(self.convs[cid], "no_show", moment)

    # -- events: youth ------------------------------------------------------------------------

    def _on_duty(self) -> list[_Staff]:
        return [s for s in self.staff.values() if s.on]

    def _target(self, kind: str, rng: random.Random):
        on = self._on_duty()
        shares = CHOICE_DROPIN if kind != "chat" else (CHOICE_CHAT if on else CHOICE_AFTER_HOURS)
        what = _pick(rng, shares)
        # The chooser shows who is on and the wait for each: most pick someone with room.
        free = [s for s in on if self._free(s)]
        looks_at_wait = rng.random() < PICK_FREE
        if what == "staff" and on:
            return {"staff": rng.choice(free if free and looks_at_wait else on).id}
        if what == "role":
            if free and looks_at_wait:
                roles = {s.role for s in free}
            elif on and rng.random() < ROLE_AMONG_ON:
                roles = {s.role for s in on}
            else:
                roles = self.site_roles
            weights = {r: ROLE_WEIGHTS.get(r, 0.05) for r in sorted(roles)}
            if weights:
                return {"role": _pick(rng, weights)}
        return "any"

    def _answer_about(self, youth: Youth, conversation: Conversation) -> None:
        rng = self.rng["about"]
        if rng.random() >= ABOUT_SHARE:
            return
        answers = {
            name: _pick(rng, weights) if rng.random() >= ABOUT_SKIP else None
            for name, weights in ABOUT_WEIGHTS.items()
        }
        if any(answers.values()):
            chat.about_give(youth=youth, conversation_id=conversation.id, answers=answers)
            self.summary.about_answered += 1
            for name, value in answers.items():
                if value is not None:
                    self.summary.about_answers[name] = self.summary.about_answers.get(name, 0) + 1

    def _on_arrive(self, moment: datetime, kind: str) -> None:
        rng = self.rng["choice"]
        target = self._target(kind, rng)
        crisis = kind == "chat" and rng.random() < CRISIS_AT_REQUEST
        share = TOPIC_SHARE if kind == "chat" else TOPIC_SHARE_DROPIN
        topic = _pick(rng, TOPIC_WEIGHTS) if kind != "kiosk" and rng.random() < share else None
        try:
            if kind == "kiosk":
                conversation, _code = queue.kiosk_ticket_take(
                    site_slug=self.site.slug, target=target
                )
            else:
                youth, _token = chat.youth_session_create()
                site_slug = self.site.slug if kind == "dropin" else None
                pool_slug = self.pool.slug if kind == "chat" else None
                conversation = queue.queue_request(
                    youth=youth,
                    target=target,
                    topic=topic,
                    site_slug=site_slug,
                    pool_slug=pool_slug,
                    crisis=crisis,
                )
        except ServiceError:
            self.summary.refused += 1  # e.g. a drop-in ticket at a closed arena
            return
        if kind != "kiosk":
            self._answer_about(youth, conversation)
        c = self._adopt(conversation)
        self.queued[c.id] = c
        s = self.summary
        s.contacts += 1
        s.chats += c.channel == "chat"
        s.dropins += c.channel == "dropin"
        s.kiosk += kind == "kiosk"
        s.after_hours += c.after_hours
        s.crisis += c.crisis
        patience = self.rng["patience"]
        if c.crisis:
            wait = _lognormal_median(patience, *PATIENCE_CRISIS)
        elif c.channel == "dropin":
            wait = _lognormal_median(patience, *PATIENCE_DROPIN)
        elif c.after_hours:
            waits = patience.random() < AFTER_HOURS_WAITS
            wait = None if waits else _lognormal_median(patience, *PATIENCE_AFTER_HOURS)
        else:
            wait = _lognormal_median(patience, PATIENCE_MEDIAN, PATIENCE_SIGMA)
        if wait is not None:
            self.at(moment + timedelta(seconds=wait), "abandon", c.id, priority=7)
        if c.requested_staff_id:
            delay = settings.YOUTHHUB_NAMED_WAIT_SECONDS + patience.uniform(30, 120)
            self.at(moment + timedelta(seconds=delay), "switch", c.id)
        if not c.crisis and c.channel == "chat" and patience.random() < CRISIS_WHILE_WAITING:
            self.at(moment + timedelta(seconds=patience.uniform(60, 300)), "crisis", c.id)
        self._wake(moment)

    def _on_abandon(self, moment: datetime, cid) -> None:
        c = self.convs[cid]
        if c.state != "queued":
            return
        chat.conversation_end(actor=Actor.for_youth(c.youth), conversation_id=c.id)
        self._closed(c, "abandoned", moment)

    def _on_switch(self, moment: datetime, cid) -> None:
        c = self.convs[cid]
        if c.state != "queued" or not c.requested_staff_id:
            return
        if self.rng["choice"].random() < SWITCH_SHARE:
            queue.queue_change_target(youth=c.youth, target="any")
            c.requested_staff_id, c.requested_role = None, ""
            self.summary.switched += 1
            self._wake(moment)

    def _on_crisis(self, moment: datetime, cid) -> None:
        c = self.convs[cid]
        if c.state != "queued" or c.crisis:
            return
        queue.queue_crisis(youth=c.youth)
        c.crisis = True
        self.summary.crisis += 1
        self._wake(moment)

    # -- events: staff ------------------------------------------------------------------------

    def _on_shift_start(self, moment: datetime, staff_id: int) -> None:
        s = self.staff[staff_id]
        queue.staff_set_status(user=s.user, status=Status.AVAILABLE)  # also sets seen_at
        s.on, s.shift_end, s.stay_until, s.seen = True, None, None, moment
        self._wake(moment)

    def _on_shift_end(self, moment: datetime, staff_id: int, at_closing: bool) -> None:
        s = self.staff[staff_id]
        s.shift_end = moment
        s.stay_until = moment + STAY_AFTER_CLOSE if at_closing else moment
        if at_closing:
            self.at(s.stay_until, "leave_check", s.id)
        self._leave_if_done(s, moment)

    def _on_leave_check(self, moment: datetime, staff_id: int) -> None:
        self._leave_if_done(self.staff[staff_id], moment)

    def _leave_if_done(self, s: _Staff, moment: datetime) -> None:
        """Going home: once the shift is over and nobody who asked before it ended waits
        (or STAY_AFTER_CLOSE has passed)."""
        if not s.on or s.shift_end is None:
            return
        if moment < s.stay_until and any(self._may_take(s, c) for c in self._queued()):
            return
        s.on = False
        status = Status.AWAY if (s.chats or s.dropins) else Status.OFFLINE
        queue.staff_set_status(user=s.user, status=status)

    def _queued(self) -> list[_Conv]:
        return list(self.queued.values())

    def _may_take(self, s: _Staff, c: _Conv) -> bool:
        if c.state != "queued":
            return False
        if s.shift_end is not None and c.created >= s.shift_end:
            return False  # staying on only for those who asked before closing
        if c.crisis:
            return True
        if c.requested_staff_id:
            return c.requested_staff_id == s.id
        if c.requested_role:
            return c.requested_role == s.role
        return True

    def _free(self, s: _Staff) -> bool:
        return s.on and not s.dropins and len(s.chats) < s.capacity

    def _wake(self, moment: datetime) -> None:
        """Staff with a free place notice someone they may take and take them 30-90 s later."""
        queued = self._queued()
        if not queued:
            return
        for s in self.staff.values():
            if s.claim_pending or not self._free(s):
                continue
            if any(self._may_take(s, c) for c in queued):
                s.claim_pending = True
                delay = self.rng["latency"].uniform(*ACCEPT_LATENCY)
                self.at(moment + timedelta(seconds=delay), "claim", s.id, priority=3)

    def _on_claim(self, moment: datetime, staff_id: int) -> None:
        s = self.staff[staff_id]
        s.claim_pending = False
        if not self._free(s):
            return
        candidates = sorted(
            (c for c in self._queued() if self._may_take(s, c)),
            key=lambda c: (not c.crisis, c.requested_staff_id != s.id, c.created),
        )
        if not candidates:
            return
        conversation = None
        if self.rng["latency"].random() < ACCEPT_BY_ROW:
            try:
                conversation = queue.queue_accept(user=s.user, conversation_id=candidates[0].id)
            except ServiceError:
                conversation = None
        if conversation is None:
            try:
                conversation = queue.queue_claim_next(user=s.user)
            except ServiceError:
                return
        c = self.convs.get(conversation.id) or self._adopt(conversation)
        c.state, c.staff_id, c.assigned = "active", s.id, conversation.assigned_at
        self.queued.pop(c.id, None)
        self.summary.answered += 1
        if c.channel == "dropin":
            s.dropins.add(c.id)
            self._called(c, moment)
        else:
            s.chats.add(c.id)
            self._talk(c, moment)
        self._wake(moment)
        self._leave_if_done(s, moment)

    def _adopt(self, conversation: Conversation) -> _Conv:
        """A request that was waiting before the run (left over in the database)."""
        c = _Conv(
            id=conversation.id,
            youth=conversation.youth,
            channel=conversation.channel,
            created=conversation.created_at,
            requested_staff_id=conversation.requested_staff_id,
            requested_role=conversation.requested_role,
            crisis=conversation.crisis,
            after_hours=conversation.after_hours,
            topic=conversation.topic,
        )
        self.convs[c.id] = c
        return c

    def _talk(self, c: _Conv, moment: datetime) -> None:
        rng = self.rng["duration"]
        if c.crisis:
            seconds = _lognormal_mean(rng, DURATION_CRISIS, DURATION_SIGMA)
            messages = MESSAGES
        elif c.after_hours and (moment - c.created) > timedelta(minutes=30):
            seconds = _lognormal_mean(rng, DURATION_AFTER_HOURS, DURATION_SIGMA)
            messages = MESSAGES_AFTER_HOURS
        else:
            seconds = _lognormal_mean(rng, DURATION_MEAN, DURATION_SIGMA)
            messages = MESSAGES
        seconds = max(seconds, 60)
        said = self.rng["messages"]
        n = said.randint(*messages)
        offsets = sorted(said.uniform(5, seconds - 5) for _ in range(n))
        first = "staff" if c.after_hours else said.choice(("youth", "staff"))
        other = "youth" if first == "staff" else "staff"
        for i, offset in enumerate(offsets):
            sender = first if i % 2 == 0 else other
            self.at(moment + timedelta(seconds=offset), "message", c.id, sender, i)
        self.at(moment + timedelta(seconds=seconds), "end", c.id, priority=4)

    def _called(self, c: _Conv, moment: datetime) -> None:
        rng = self.rng["dropin"]
        c.will_arrive = rng.random() < ARRIVES
        if not c.will_arrive:
            self.no_show_due.add(c.id)
        if c.will_arrive:
            self.at(moment + timedelta(seconds=rng.uniform(*ARRIVAL_DELAY)), "arrived", c.id)
        elif rng.random() < NOSHOW_BY_STAFF:
            delay = rng.uniform(*STAFF_NOSHOW_DELAY)
            self.at(moment + timedelta(seconds=delay), "staff_no_show", c.id)
        else:  # the timer marks it; this only makes sure the loop runs until then
            delay = settings.YOUTHHUB_NOSHOW_SECONDS + 61
            self.at(moment + timedelta(seconds=delay), "no_show_check", c.id)

    def _on_message(self, moment: datetime, cid, sender: str, i: int) -> None:
        c = self.convs[cid]
        if c.state != "active":
            return
        if sender == "youth":
            actor = Actor.for_youth(c.youth)
        else:
            actor = Actor.for_staff(self.staff[c.staff_id].user)
        chat.message_send(
            actor=actor, conversation_id=c.id, client_id=f"sim-{sender}-{i}", text=PLACEHOLDER
        )
        self.summary.messages += 1

    def _on_arrived(self, moment: datetime, cid) -> None:
        c = self.convs[cid]
        if c.state != "active":
            return
        queue.dropin_arrived(user=self.staff[c.staff_id].user, conversation_id=c.id)
        rng = self.rng["duration"]
        seconds = max(_lognormal_median(rng, *DURATION_DROPIN), 120)
        self.at(moment + timedelta(seconds=seconds), "end", c.id, priority=4)

    def _on_staff_no_show(self, moment: datetime, cid) -> None:
        c = self.convs[cid]
        if c.state != "active":
            return
        queue.dropin_no_show(user=self.staff[c.staff_id].user, conversation_id=c.id)
        self._closed(c, "no_show", moment)

    def _on_no_show_check(self, moment: datetime, cid) -> None:
        c = self.convs[cid]
        if c.state != "active":
            return
        queue.queue_tick(now=moment)  # the timer, had no tick run since the deadline
        self._sync_no_shows(moment)

    def _on_end(self, moment: datetime, cid) -> None:
        c = self.convs[cid]
        if c.state != "active":
            return
        rng = self.rng["ending"]
        staff_user = self.staff[c.staff_id].user
        if c.channel == "chat" and rng.random() >= STAFF_ENDS:
            chat.conversation_end(actor=Actor.for_youth(c.youth), conversation_id=c.id)
            self._closed(c, "ended", moment)
            return
        tags: list[str] = []
        if rng.random() >= TAGLESS:
            tags.append(TOPIC_TAG.get(c.topic) or _pick(rng, {t: 1 for t in STAFF_TAGS}))
            if rng.random() < EXTRA_TAG:
                tags.append(rng.choice(list(STAFF_TAGS)))
            if c.crisis:
                tags.append("self_harm" if rng.random() < 0.5 else "violence")
        triage = ""
        if rng.random() >= NO_TRIAGE:
            triage = _pick(rng, TRIAGE_CRISIS if c.crisis else TRIAGE)
        asked = rng.random() < (FEEDBACK_ASKED_DROPIN if c.channel == "dropin" else FEEDBACK_ASKED)
        self._handover(c, staff_user, triage, moment)
        chat.conversation_end(
            actor=Actor.for_staff(staff_user),
            conversation_id=c.id,
            tags=tags,
            triage=triage,
            feedback=asked,
        )
        self._closed(c, "ended", moment)
        if asked:
            self.summary.feedback_asked += 1
            answers = self.rng["feedback"]
            if answers.random() < FEEDBACK_ANSWERED:
                self.at(moment + timedelta(seconds=answers.uniform(20, 300)), "feedback", c.id)

    def _handover(self, c: _Conv, staff_user, triage: str, moment: datetime) -> None:
        """Hand a share of yellow and red chats over, with the youth's consent (see the module
        docstring); the service answers days later (`_on_handover_answer`)."""
        from youthhub.handover import services as handover
        from youthhub.handover.selectors import handover_for_youth

        rng = self.rng["handover"]
        if triage not in HANDOVER_TO or rng.random() >= HANDOVER_SHARE:
            return
        reach = rng.choice(("warm", "contact", "code"))
        draft = handover.handover_draft(
            user=staff_user,
            conversation_id=c.id,
            service=HANDOVER_TO[triage],
            reach=reach,
            summary=HANDOVER_SUMMARY,
        )
        handover.handover_propose(user=staff_user, handover_id=draft.id)
        self.summary.handovers += 1
        version = handover_for_youth(c.youth, draft.id)["ask"]["text_version"]
        yes = rng.random() < HANDOVER_CONSENT
        handover.consent_answer(
            youth=c.youth,
            handover_id=draft.id,
            service=HANDOVER_TO[triage],
            answer="agree" if yes else "no",
            age_band=rng.choice(("under_16", "16_plus")) if yes else None,
            text_version=version,
            contact="(simulert)" if yes and reach == "contact" else "",
        )
        if yes:
            self.summary.handovers_sent += 1
            self.at(moment + timedelta(days=rng.uniform(1, 5)), "handover_answer", draft.id)

    def _on_handover_answer(self, moment: datetime, handover_id) -> None:
        from youthhub.handover import services as handover
        from youthhub.handover.models import Handover

        row = Handover.objects.select_related("service").get(id=handover_id)
        partner = row.service.partners.select_related("user").first()
        if partner is None or row.state != Handover.State.SENT:
            return
        rng = self.rng["handover"]
        if rng.random() < HANDOVER_ACCEPT:
            meeting = moment + timedelta(days=rng.uniform(2, 20))
            handover.handover_accept(
                user=partner.user, handover_id=handover_id, first_meeting_at=meeting
            )
            if rng.random() < HANDOVER_MET:
                self.at(meeting, "handover_met", handover_id, partner.user)
        else:
            handover.handover_decline(
                user=partner.user,
                handover_id=handover_id,
                reason="(simulert) Ingen ledig kapasitet",
                alternative="(simulert) Kommunepsykolog i mellomtiden",
            )

    def _on_handover_met(self, moment: datetime, handover_id, user) -> None:
        from youthhub.handover import services as handover

        handover.handover_met(user=user, handover_id=handover_id)

    def _on_feedback(self, moment: datetime, cid) -> None:
        c = self.convs[cid]
        rng = self.rng["feedback"]
        scores = {
            name: (None if rng.random() < SCORE_SKIPPED else _pick(rng, SCORE_WEIGHTS))
            for name in ("understood", "talked_about", "form", "useful")
        }
        if all(v is None for v in scores.values()):
            scores["useful"] = _pick(rng, SCORE_WEIGHTS)
        chat.feedback_give(youth=c.youth, conversation_id=c.id, scores=scores)
        self.summary.feedback += 1

    def _closed(self, c: _Conv, state: str, moment: datetime) -> None:
        c.state = state
        self.queued.pop(c.id, None)
        self.no_show_due.discard(c.id)
        if state == "abandoned":
            self.summary.abandoned += 1
        elif state == "no_show":
            self.summary.no_shows += 1
        else:
            self.summary.ended += 1
        if c.staff_id is not None:
            s = self.staff[c.staff_id]
            s.chats.discard(c.id)
            s.dropins.discard(c.id)
            if not s.on and not s.chats and not s.dropins and s.shift_end is not None:
                queue.staff_set_status(user=s.user, status=Status.OFFLINE)
            self._leave_if_done(s, moment)
        self._wake(moment)


def simulate(
    *,
    start: date,
    days: int,
    seed: int = 1,
    load: float = 1.0,
    fanout: bool = False,
    log: Callable[[str], None] | None = None,
) -> Summary:
    """Replay `days` days of traffic from local date `start` through the services."""
    return Simulation(start=start, days=days, seed=seed, load=load, fanout=fanout, log=log).run()


def default_end(today: date | None = None) -> date:
    """Yesterday in Oslo."""
    today = today or datetime.now(UTC).astimezone(OSLO).date()
    return today - timedelta(days=1)
