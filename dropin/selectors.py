"""Reads of the one queue: who is on, who waits in which order, how long, and the frames.

The queue is every conversation in state `queued`, chat and drop-in alike. Order (the same
for every reader): crisis first, then waiting time. A staff member's own view then puts the
youth who asked for them right after the crisis entries (`personalise`).

Scopes: a chat request belongs to a pool (several arenas answer it), a drop-in ticket to one
site. A staff member serves the sites on their profile and the pools those sites are in.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from chat.errors import ServiceError
from chat.models import Conversation
from youthhub.staff.models import StaffProfile, Status

from .hours import Schedule
from .models import Pool, Site, TimerHold
from .waits import Estimate, estimate_wait, mean_handle_seconds

ON_DUTY_STATUSES = (Status.AVAILABLE, Status.BUSY)


def timers_held(*, now: datetime) -> bool:
    """Whether a hold (`services.timers_hold`) keeps the workers' timers still at `now`."""
    return TimerHold.objects.filter(until__gt=now).exists()


def presence_cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.YOUTHHUB_STAFF_PRESENCE_SECONDS)


def default_pool() -> Pool | None:
    slug = settings.YOUTHHUB_DEFAULT_POOL
    if slug:
        return Pool.objects.filter(slug=slug).first()
    return Pool.objects.order_by("id").first()


def where(*, site_slug: str | None = None, pool_slug: str | None = None):
    """(pool, site) a youth addresses: an arena's drop-in (site), or a chat pool (default:
    YOUTHHUB_DEFAULT_POOL); `bad_site` for a slug that names nothing."""
    if site_slug is not None:
        site = Site.objects.filter(slug=site_slug).first()
        if site is None:
            raise ServiceError("bad_site", _("There is no such place."))
        return None, site
    pool = Pool.objects.filter(slug=pool_slug).first() if pool_slug else default_pool()
    if pool_slug and pool is None:
        raise ServiceError("bad_site", _("There is no such chat."))
    return pool, None


@dataclass(frozen=True)
class StaffScope:
    """What one staff member serves and may take."""

    user_id: int
    role: str
    capacity: int
    is_supervisor: bool
    site_ids: frozenset[int]
    pool_ids: frozenset[int]
    busy: int = 0

    def serves(self, entry: "Entry") -> bool:
        if entry.site_id is None and entry.pool_id is None:
            return True  # unrouted (an installation without pools)
        if entry.channel == Conversation.Channel.DROPIN:
            return entry.site_id in self.site_ids
        return entry.pool_id in self.pool_ids

    def sees(self, entry: "Entry") -> bool:
        return self.is_supervisor or self.serves(entry)

    def chose(self, entry: "Entry") -> bool:
        """Whether the youth's choice allows this person (crisis aside)."""
        if entry.requested_staff_id is not None:
            return entry.requested_staff_id == self.user_id
        if entry.requested_role:
            return entry.requested_role == self.role
        return True

    def may_take(self, entry: "Entry") -> bool:
        # In a crisis anyone serving the queue may answer: safety before the youth's choice
        # (the dashboard still shows whom they asked for).
        return self.serves(entry) and (entry.crisis or self.chose(entry))


def staff_scope(profile: StaffProfile, busy: int = 0) -> StaffScope:
    sites = list(profile.sites.all())
    return StaffScope(
        user_id=profile.user_id,
        role=profile.role,
        capacity=profile.capacity,
        is_supervisor=profile.is_supervisor,
        site_ids=frozenset(s.pk for s in sites),
        pool_ids=frozenset(s.pool_id for s in sites if s.pool_id),
        busy=busy,
    )


def active_counts(user_ids=None) -> dict[int, int]:
    qs = Conversation.objects.filter(state=Conversation.State.ACTIVE)
    if user_ids is not None:
        qs = qs.filter(assigned_staff_id__in=user_ids)
    rows = qs.values("assigned_staff_id").annotate(n=Count("id"))
    return {row["assigned_staff_id"]: row["n"] for row in rows}


def on_duty(now: datetime | None = None) -> list[StaffScope]:
    """Staff who are on now: available or busy, with a dashboard seen recently."""
    now = now or timezone.now()
    profiles = list(
        StaffProfile.objects.filter(
            status__in=ON_DUTY_STATUSES, seen_at__gte=presence_cutoff(now), user__is_active=True
        ).prefetch_related("sites")
    )
    busy = active_counts([p.user_id for p in profiles])
    return [staff_scope(p, busy.get(p.user_id, 0)) for p in profiles]


def shift(me: StaffScope, now: datetime | None = None) -> list[dict]:
    """ "My shift": colleagues who serve any of my queues (supervisors: everyone) and are not
    offline, with their status, open chats and capacity."""
    now = now or timezone.now()
    profiles = (
        StaffProfile.objects.filter(user__is_active=True, seen_at__gte=presence_cutoff(now))
        .exclude(status=Status.OFFLINE)
        .prefetch_related("sites")
        .order_by("display_name")
    )
    rows = []
    chats = active_counts([p.user_id for p in profiles])
    for profile in profiles:
        scope = staff_scope(profile)
        shares = scope.site_ids & me.site_ids or scope.pool_ids & me.pool_ids
        if not (me.is_supervisor or shares or profile.user_id == me.user_id):
            continue
        rows.append(
            {
                **profile.public_card(),
                "status": profile.status,
                "chats": chats.get(profile.user_id, 0),
                "capacity": profile.capacity,
                "me": profile.user_id == me.user_id,
            }
        )
    return rows


def transfer_concerns(card: dict, me: StaffScope) -> bool:
    """Who hears of a transfer: its sender, whoever may receive it, and supervisors."""
    return me.is_supervisor or me.user_id == card["from"]["id"] or may_receive_transfer(card, me)


def may_receive_transfer(card: dict, me: StaffScope) -> bool:
    """The named colleague, or (to a role) anyone of that role who serves the youth's queue."""
    if me.user_id == card["from"]["id"]:
        return False
    if card["to_staff"] is not None:
        return card["to_staff"]["id"] == me.user_id
    return card["to_role"] == me.role and me.serves(_RowEntry({**card, "target": "any"}))


def waiting_since_by_pool() -> dict[int, list[datetime]]:
    """When each waiting request arrived, by pool (a drop-in ticket counts in its arena's pool)."""
    rows = Conversation.objects.filter(state=Conversation.State.QUEUED).values_list(
        "pool_id", "site__pool_id", "created_at"
    )
    waiting: dict[int, list[datetime]] = {}
    for pool_id, site_pool_id, created_at in rows:
        waiting.setdefault(pool_id or site_pool_id or 0, []).append(created_at)
    return waiting


def recent_handle_seconds() -> float:
    """Mean duration of recent chats (cached for a minute: it moves slowly)."""
    key = "yh:handle-seconds"
    try:
        cached = cache.get(key)
    except Exception:  # Redis restarting: compute it (the queue must not stop)
        cached = None
    if cached is not None:
        return cached
    since = timezone.now() - timedelta(days=14)
    rows = (
        Conversation.objects.filter(
            state=Conversation.State.ENDED, assigned_at__gte=since, ended_at__isnull=False
        )
        .order_by("-ended_at")
        .values_list("assigned_at", "ended_at")[:50]
    )
    value = mean_handle_seconds(
        [(ended - assigned).total_seconds() for assigned, ended in rows],
        default=settings.YOUTHHUB_DEFAULT_HANDLE_MINUTES * 60,
    )
    try:
        cache.set(key, value, 60)
    except Exception:
        pass
    return value


class _Scoped:
    """A chat belongs to its pool's queue, a drop-in ticket to its site's."""

    @property
    def scope(self):
        return (self.channel, self.site_id if self.channel == "dropin" else self.pool_id)


@dataclass
class Entry(_Scoped):
    """One waiting youth, as the queue needs them (no content, no identity beyond the alias)."""

    id: str
    alias: str
    channel: str
    pool_id: int | None
    site_id: int | None
    requested_staff_id: int | None
    requested_staff_name: str
    requested_staff_role: str
    requested_role: str
    topic: str
    crisis: bool
    created_at: datetime
    ticket: str
    after_hours: bool
    switch_offered: bool
    target: str | dict

    @property
    def key(self):
        """The one queue order: crisis first, then waiting time."""
        return (not self.crisis, self.created_at, self.id)


def _target_roles(entry) -> tuple[int | None, str | None]:
    if entry.requested_staff_id is not None:
        return entry.requested_staff_id, entry.requested_staff_role
    return None, entry.requested_role or None


def _targets_overlap(a, b) -> bool:
    a_staff, a_role = _target_roles(a)
    b_staff, b_role = _target_roles(b)
    if a_role is None or b_role is None:
        return True  # "any" competes with everyone
    if a_staff is not None and b_staff is not None:
        return a_staff == b_staff
    return a_role == b_role


def entry_from(c: Conversation) -> Entry:
    named = c.requested_staff
    profile = getattr(named, "staff_profile", None) if named else None
    return Entry(
        id=str(c.id),
        alias=c.youth.alias,
        channel=c.channel,
        pool_id=c.pool_id,
        site_id=c.site_id,
        requested_staff_id=c.requested_staff_id,
        requested_staff_name=profile.display_name if profile else "",
        requested_staff_role=profile.role if profile else "",
        requested_role=c.requested_role,
        topic=c.topic,
        crisis=c.crisis,
        created_at=c.created_at,
        ticket=c.ticket,
        after_hours=c.after_hours,
        switch_offered=c.switch_offered_at is not None,
        target=c.target,
    )


@dataclass
class Hypothetical(_Scoped):
    """A request not made yet: what would "any" / a role / a person wait right now?"""

    channel: str
    pool_id: int | None
    site_id: int | None
    requested_staff_id: int | None = None
    requested_staff_role: str = ""
    requested_role: str = ""
    crisis: bool = False


@dataclass
class QueueState:
    """One consistent read of the queue, the staff on duty and the recent handling time."""

    entries: list[Entry]
    staff: list[StaffScope]
    handle_seconds: float
    now: datetime
    _positions: dict[str, int] = field(default_factory=dict)

    def ahead_of(self, entry) -> list[Entry]:
        """Entries served before `entry` by the same staff."""
        if isinstance(entry, Entry):
            return [
                e
                for e in self.entries
                if e.key < entry.key and e.scope == entry.scope and _targets_overlap(e, entry)
            ]
        return [e for e in self.entries if e.scope == entry.scope and _targets_overlap(e, entry)]

    def position(self, entry: Entry) -> int:
        if entry.id not in self._positions:
            self._positions[entry.id] = len(self.ahead_of(entry)) + 1
        return self._positions[entry.id]

    def servers(self, entry) -> list[StaffScope]:
        staff = [s for s in self.staff if s.serves(entry)]
        if entry.crisis:
            return staff
        return [s for s in staff if s.chose(entry)]

    def estimate(self, entry) -> Estimate | None:
        servers = self.servers(entry)
        return estimate_wait(
            ahead=len(self.ahead_of(entry)),
            slots=sum(s.capacity for s in servers),
            busy=sum(s.busy for s in servers),
            handle_seconds=self.handle_seconds,
        )


def queue_state(now: datetime | None = None) -> QueueState:
    now = now or timezone.now()
    queued = Conversation.objects.select_related("youth", "requested_staff__staff_profile").filter(
        state=Conversation.State.QUEUED
    )
    entries = sorted((entry_from(c) for c in queued), key=lambda e: e.key)
    return QueueState(
        entries=entries, staff=on_duty(now), handle_seconds=recent_handle_seconds(), now=now
    )


# -- frames ------------------------------------------------------------------------------------


def _scope_sites(entry) -> list[Site]:
    if entry.channel == Conversation.Channel.DROPIN and entry.site_id:
        return list(Site.objects.filter(pk=entry.site_id))
    if entry.pool_id:
        return list(Site.objects.filter(pool_id=entry.pool_id))
    return []


def availability(entry, state: QueueState, schedules: dict | None = None) -> dict:
    """Whether someone is on for this scope and, if not, when the next opening is."""
    someone_on = bool(state.servers(Hypothetical(entry.channel, entry.pool_id, entry.site_id)))
    scope = entry.scope
    if schedules is not None and scope in schedules:
        schedule = schedules[scope]
    else:
        schedule = Schedule.for_sites(_scope_sites(entry), state.now)
        if schedules is not None:
            schedules[scope] = schedule
    is_open = someone_on or schedule.is_open(state.now)
    opens_at = None if is_open else schedule.next_opening(state.now)
    return {"open": is_open, "opens_at": opens_at.isoformat() if opens_at else None}


def queued_frame(entry: Entry, state: QueueState, schedules: dict | None = None) -> dict:
    estimate = state.estimate(entry)
    return {
        "type": "queued",
        "conversation_id": entry.id,
        "channel": entry.channel,
        "ticket": entry.ticket or None,
        "target": entry.target,
        "target_name": entry.requested_staff_name or None,
        "crisis": entry.crisis,
        "position": state.position(entry),
        **(estimate.as_dict() if estimate else {"eta_seconds": None, "eta_range": None}),
        "switch_offer": entry.switch_offered,
        **availability(entry, state, schedules),
    }


def queued_frame_for(conversation: Conversation) -> dict:
    state = queue_state()
    for entry in state.entries:
        if entry.id == str(conversation.id):
            return queued_frame(entry, state)
    raise LookupError("not queued")


def staff_entry(entry: Entry, position: int) -> dict:
    """A queue row as every staff consumer receives it before `personalise`."""
    return {
        "conversation_id": entry.id,
        "alias": entry.alias,
        "channel": entry.channel,
        "ticket": entry.ticket or None,
        "pool_id": entry.pool_id,
        "site_id": entry.site_id,
        "target": entry.target,
        "target_name": entry.requested_staff_name or None,
        "topic": entry.topic or None,
        "crisis": entry.crisis,
        "after_hours": entry.after_hours,
        "waiting_since": entry.created_at.isoformat(),
        "position": position,
    }


def staff_queue(state: QueueState) -> list[dict]:
    return [staff_entry(e, state.position(e)) for e in state.entries]


def personalise(queue: list[dict], me: StaffScope) -> list[dict]:
    """One staff member's view: what they serve (supervisors: all), crisis first, then the
    youth who asked for them, then by waiting time; each row says if they may take it."""
    rows = []
    for row in queue:
        entry = _RowEntry(row)
        if not me.sees(entry):
            continue
        for_me = row["target"] != "any" and me.chose(entry)
        rows.append({**row, "for_me": for_me, "claimable": me.may_take(entry)})
    rows.sort(key=lambda r: (not r["crisis"], not r["for_me"], r["waiting_since"]))
    return rows


class _RowEntry:
    """Adapts a staff queue row (a dict off the channel layer) to StaffScope's checks."""

    def __init__(self, row: dict):
        self.channel = row["channel"]
        self.pool_id = row["pool_id"]
        self.site_id = row["site_id"]
        self.crisis = row["crisis"]
        target = row.get("target", "any")
        self.requested_staff_id = target.get("staff") if isinstance(target, dict) else None
        self.requested_role = target.get("role", "") if isinstance(target, dict) else ""


def alert_concerns(alert: dict, me: StaffScope) -> bool:
    """A crisis alert goes to supervisors, the youth's own staff member, and (while the youth
    waits) everyone serving their queue."""
    if me.is_supervisor or alert["assigned_staff_id"] == me.user_id:
        return True
    return alert["state"] == Conversation.State.QUEUED and me.serves(_RowEntry(alert))


def claim_order(state: QueueState, me: StaffScope) -> list[str]:
    """Conversation ids this staff member may take, in the order they should take them."""
    rows = personalise(staff_queue(state), me)
    return [r["conversation_id"] for r in rows if r["claimable"]]


# -- the youth's "who is on now" -------------------------------------------------------------


def overview(*, pool: Pool | None = None, site: Site | None = None) -> dict:
    """Who youth can choose now, with queue length and estimated wait per person and role."""
    now = timezone.now()
    state = queue_state(now)
    if site is not None:
        base = Hypothetical(Conversation.Channel.DROPIN, None, site.pk)
    else:
        base = Hypothetical(Conversation.Channel.CHAT, pool.pk if pool else None, None)
    servers = state.servers(base)
    on_ids = {s.user_id for s in servers}
    profiles = (
        StaffProfile.objects.filter(user_id__in=on_ids)
        .select_related("user")
        .order_by("display_name")
    )

    def wait(hypothetical):
        estimate = state.estimate(hypothetical)
        return {
            "queue_length": len(state.ahead_of(hypothetical)),
            **(estimate.as_dict() if estimate else {"eta_seconds": None, "eta_range": None}),
        }

    staff = []
    for profile in profiles:
        scope = next(s for s in servers if s.user_id == profile.user_id)
        staff.append(
            {
                **profile.youth_card(),
                "status": profile.status,
                "free_places": max(scope.capacity - scope.busy, 0),
                **wait(
                    replace(
                        base, requested_staff_id=profile.user_id, requested_staff_role=profile.role
                    )
                ),
            }
        )
    roles = []
    for role in sorted({s.role for s in servers}):
        roles.append({"role": role, **wait(replace(base, requested_role=role))})
    return {
        "channel": base.channel,
        "pool": pool.slug if pool else None,
        "site": site.slug if site else None,
        "now": now.isoformat(),
        **availability(base, state),
        "any": wait(base),
        "staff": staff,
        "roles": roles,
    }
