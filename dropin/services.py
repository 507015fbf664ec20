"""Every write to the queue: requests, choices, crisis flags, claims, drop-in calls, ticks.

Rules (docs/queue.md): a youth has one open conversation; a named person must be on now; a
role must exist in the scope; staff take only what they serve and what the youth chose
(anyone serving the queue may take a crisis); capacity is checked under a lock on the staff
row; taking is a conditional UPDATE on the row still being queued with the same choice, so
of any number of concurrent takes exactly one wins, on PostgreSQL and SQLite alike.
"""

from datetime import time, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import events
from chat import selectors as chat_selectors
from chat.actors import Actor
from chat.errors import ServiceError
from chat.models import TOPICS, Conversation, Note, Transfer, Youth
from chat.services import (
    conversation_key_create,
    note_create,
    transcript_read,
    transfer_close,
    youth_check_not_blocked,
    youth_return_code_issue,
    youth_session_create,
)
from youthhub.audit.services import audit_record
from youthhub.staff.models import Role, StaffProfile, Status
from youthhub.stats.services import capacity_sample, stats_record_closed

from . import broadcast, selectors
from .hours import OSLO, Schedule
from .models import OpeningHours, Pool, Site, TicketCounter, TimerHold

# ---------------------------------------------------------------------------------------------
# Sites


def site_ensure(
    *,
    slug: str,
    name: str,
    weekly_hours: dict[int, tuple[time, time]],
    pool: Pool | None = None,
    ticket_prefix: str = "A",
) -> Site:
    """Create or update a site and replace its weekly opening hours."""
    with transaction.atomic():
        site, _ = Site.objects.update_or_create(
            slug=slug, defaults={"name": name, "pool": pool, "ticket_prefix": ticket_prefix}
        )
        site.opening_hours.all().delete()
        OpeningHours.objects.bulk_create(
            OpeningHours(site=site, weekday=day, opens=opens, closes=closes)
            for day, (opens, closes) in weekly_hours.items()
        )
    return site


def pool_ensure(*, slug: str, name: str) -> Pool:
    pool, _ = Pool.objects.update_or_create(slug=slug, defaults={"name": name})
    return pool


# ---------------------------------------------------------------------------------------------
# Youth: request, change, crisis


def _staff_id(value) -> int | None:
    """A staff user id from a client, or None: a whole number that fits the id column (a
    larger one would overflow SQLite's integer before any lookup)."""
    if type(value) is int and 1 <= value <= 2**31 - 1:
        return value
    return None


def _resolve_target(target, scope: selectors.Hypothetical, now) -> dict:
    """Validate the youth's choice in this queue; returns the Conversation fields it sets."""
    if target == "any":
        return {"requested_staff": None, "requested_role": "", "chosen_at": now}
    if not isinstance(target, dict) or len(target) != 1:
        raise ServiceError("bad_target", _('Choose "any", {"staff": id} or {"role": name}.'))
    ((kind, value),) = target.items()
    if kind == "staff":
        if _staff_id(value) is None:
            raise ServiceError("bad_target", _("That person does not work here."))
        profile = StaffProfile.objects.filter(user_id=value, user__is_active=True).first()
        if profile is None or not selectors.staff_scope(profile).serves(scope):
            raise ServiceError("bad_target", _("That person does not work here."))
        if profile.user_id not in {s.user_id for s in selectors.on_duty(now)}:
            raise ServiceError(
                "not_on_duty",
                _("{name} is not on right now. Choose someone else, or first available.").format(
                    name=profile.display_name
                ),
            )
        return {"requested_staff": profile.user, "requested_role": "", "chosen_at": now}
    if kind == "role":
        if value not in Role.values:
            raise ServiceError("bad_target", _("There is no such kind of helper."))
        staff = StaffProfile.objects.filter(role=value, user__is_active=True).prefetch_related(
            "sites"
        )
        if not any(selectors.staff_scope(p).serves(scope) for p in staff):
            raise ServiceError("bad_target", _("Nobody of that kind works here. Choose another."))
        return {"requested_staff": None, "requested_role": value, "chosen_at": now}
    raise ServiceError("bad_target", _('Choose "any", {"staff": id} or {"role": name}.'))


def _check_topic(topic: str | None) -> str:
    if topic is None:
        return ""
    if topic not in TOPICS:
        raise ServiceError(
            "bad_topic",
            _("Choose a topic from the list: {topics}.").format(topics=", ".join(TOPICS)),
        )
    return topic


def _next_ticket(site: Site, now) -> str:
    day = now.astimezone(OSLO).date()
    counter, _ = TicketCounter.objects.select_for_update().get_or_create(site=site, day=day)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"{site.ticket_prefix}-{counter.last}"


def queue_request(
    *,
    youth: Youth,
    target="any",
    topic: str | None = None,
    site_slug: str | None = None,
    pool_slug: str | None = None,
    crisis: bool = False,
) -> Conversation:
    """Join the queue: a chat (the pool's) or, with `site_slug`, a drop-in ticket at an arena.
    Not while a block on the identity is in force (`blocked`)."""
    youth_check_not_blocked(youth)
    open_conversation = chat_selectors.youth_open_conversation(youth)
    if open_conversation is not None:
        raise _already_open(open_conversation)
    now = timezone.now()
    pool, site = selectors.where(site_slug=site_slug, pool_slug=pool_slug)
    channel = Conversation.Channel.DROPIN if site else Conversation.Channel.CHAT
    scope = selectors.Hypothetical(channel, pool.pk if pool else None, site.pk if site else None)
    choice = _resolve_target(target, scope, now)
    topic = _check_topic(topic)
    someone_on = any(s.serves(scope) for s in selectors.on_duty(now))
    if site is not None and not someone_on and not Schedule.for_sites([site], now).is_open(now):
        raise ServiceError(
            "arena_closed",
            _("{site} is closed now. The chat and the numbers below are open.").format(
                site=site.name
            ),
        )
    try:
        with transaction.atomic():
            # The identity's row first, as chat.services.youth_block takes it: a block placed
            # at this moment either comes first (and refuses this) or sees this request and
            # ends it.
            list(Youth.objects.select_for_update().filter(pk=youth.pk).values_list("pk"))
            youth_check_not_blocked(youth)
            conversation = Conversation.objects.create(
                youth=youth,
                channel=channel,
                pool=pool,
                site=site,
                topic=topic,
                crisis=crisis,
                crisis_at=now if crisis else None,
                after_hours=not someone_on,
                ticket=_next_ticket(site, now) if site else "",
                **choice,
            )
            conversation_key_create(conversation)
            broadcast.queue_changed()
            if crisis:
                broadcast.crisis_alert(conversation)
    except IntegrityError:
        raise ServiceError("already_queued", _("You are already waiting for someone.")) from None
    return conversation


def kiosk_ticket_take(*, site_slug: str, target="any") -> tuple[Conversation, str]:
    """A drop-in ticket from the arena's tablet: (conversation, return code).

    The ticket gets a fresh anonymous identity whose token nobody keeps; its return code goes
    to the youth's phone (inside a QR code), which resumes the identity. One transaction: a
    refused ticket (closed arena, a bad choice) leaves no identity behind.
    """
    with transaction.atomic():
        youth, _token = youth_session_create()
        conversation = queue_request(youth=youth, target=target, site_slug=site_slug)
        code = youth_return_code_issue(youth=youth)
    return conversation, code


def _already_open(conversation: Conversation) -> ServiceError:
    if conversation.state == Conversation.State.QUEUED:
        return ServiceError("already_queued", _("You are already waiting for someone."))
    return ServiceError("already_in_chat", _("You are already in a chat."))


def _queued_of(youth: Youth) -> Conversation:
    conversation = (
        Conversation.objects.select_for_update()
        .filter(youth=youth, state__in=Conversation.OPEN_STATES)
        .first()
    )
    if conversation is None:
        raise ServiceError("no_conversation", _("You are not waiting for anyone."))
    if conversation.state != Conversation.State.QUEUED:
        raise ServiceError("already_in_chat", _("You are already in a chat."))
    return conversation


def queue_change_target(*, youth: Youth, target, topic: str | None = None) -> Conversation:
    """Change whom to talk to while waiting, keeping the place in the queue."""
    now = timezone.now()
    with transaction.atomic():
        conversation = _queued_of(youth)
        scope = selectors.Hypothetical(
            conversation.channel, conversation.pool_id, conversation.site_id
        )
        choice = _resolve_target(target, scope, now)
        for field, value in choice.items():
            setattr(conversation, field, value)
        conversation.switch_offered_at = None
        fields = [*choice, "switch_offered_at"]
        if topic is not None:
            conversation.topic = _check_topic(topic)
            fields.append("topic")
        conversation.save(update_fields=fields)
        broadcast.queue_changed()
    return conversation


def queue_crisis(*, youth: Youth) -> Conversation:
    """ "I'm not safe right now": to the front of every eligible queue, everyone alerted.

    Without an open conversation this starts one (first available, crisis-flagged).
    """
    now = timezone.now()
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("youth")
            .filter(youth=youth, state__in=Conversation.OPEN_STATES)
            .first()
        )
        if conversation is not None:
            if not conversation.crisis:
                conversation.crisis = True
                conversation.crisis_at = now
                conversation.save(update_fields=["crisis", "crisis_at"])
                broadcast.queue_changed()
                broadcast.crisis_alert(conversation)
            return conversation
    return queue_request(youth=youth, target="any", crisis=True)


# ---------------------------------------------------------------------------------------------
# Staff: status, accept / call, claim next, drop-in arrival and no-show


def _profile_of(user) -> StaffProfile:
    profile = StaffProfile.objects.filter(user=user, user__is_active=True).first()
    if profile is None:
        raise ServiceError("not_allowed", _("Only staff can take conversations."))
    return profile


def staff_set_status(*, user, status: str) -> StaffProfile:
    if status not in (Status.AVAILABLE, Status.BUSY, Status.AWAY, Status.OFFLINE):
        raise ServiceError("bad_status", _("Status is one of available, busy, away, offline."))
    profile = _profile_of(user)
    with transaction.atomic():
        StaffProfile.objects.filter(pk=profile.pk).update(status=status, seen_at=timezone.now())
        broadcast.queue_changed()  # who is on changes everyone's estimate
    profile.status = status
    return profile


def staff_seen(*, user, every_seconds: int = 30) -> None:
    """A dashboard is alive (hello / ping). Written at most every `every_seconds`.

    The queue is broadcast only when this brings an on-duty person back to "on now" (their
    last sign of life was older than the presence window): a heartbeat of someone who is on
    changes nobody's view, and rebuilding the queue for every staff socket on each one grew
    as staff² (docs/benchmarks.md)."""
    now = timezone.now()
    came_back = (
        StaffProfile.objects.filter(user=user, status__in=selectors.ON_DUTY_STATUSES)
        .filter(Q(seen_at__isnull=True) | Q(seen_at__lt=selectors.presence_cutoff(now)))
        .update(seen_at=now)
    )
    if came_back:
        broadcast.queue_changed()
        return
    StaffProfile.objects.filter(user=user).exclude(
        seen_at__gte=now - timedelta(seconds=every_seconds)
    ).update(seen_at=now)


def _lock_staff_with_capacity(user) -> tuple[StaffProfile, selectors.StaffScope]:
    """Lock the staff row (so one person's own concurrent takes see each other) and check
    capacity. Returns (profile, scope)."""
    profile = _profile_of(user)
    profile = StaffProfile.objects.select_for_update().prefetch_related("sites").get(pk=profile.pk)
    active = Conversation.objects.filter(
        assigned_staff=user, state=Conversation.State.ACTIVE
    ).count()
    if active >= profile.capacity:
        raise ServiceError(
            "at_capacity",
            _("You already have {n} chats (your capacity is {capacity}).").format(
                n=active, capacity=profile.capacity
            ),
        )
    return profile, selectors.staff_scope(profile, active)


def _check_room(room: str | None) -> str | None:
    """Where a called ticket meets staff: plain text up to 40 characters, or None."""
    if room is None:
        return None
    if not isinstance(room, str) or "\x00" in room or len(room) > 40:
        raise ServiceError("bad_room", _("A room is a short name, like “Rom 4”."))
    return room.strip() or None


def _take(conversation: Conversation, *, user, profile: StaffProfile, room: str | None) -> int:
    """The conditional UPDATE: wins only if the row is still queued with the choice we checked."""
    now = timezone.now()
    fields = {"state": Conversation.State.ACTIVE, "assigned_staff": user, "assigned_at": now}
    if conversation.channel == Conversation.Channel.DROPIN:
        fields["room"] = (room or profile.room or "")[:40]
    still = Conversation.objects.filter(id=conversation.id, state=Conversation.State.QUEUED)
    if not conversation.crisis:  # a crisis flag is never lowered: anyone serving may take it
        still = still.filter(
            requested_staff_id=conversation.requested_staff_id,
            requested_role=conversation.requested_role,
        )
    return still.update(**fields)


def _after_take(conversation_id, user) -> Conversation:
    conversation = chat_selectors.conversation_for(Actor.for_staff(user), conversation_id)
    frame = chat_selectors.assigned_frame(conversation)
    events.publish_on_commit(events.conversation_group(conversation.id), frame)
    events.publish_on_commit(events.staff_user_group(user.id), frame)
    broadcast.queue_changed()
    return conversation


def queue_accept(*, user, conversation_id, room: str | None = None) -> Conversation:
    """Take one waiting youth (a drop-in ticket: call it to `room`). One concurrent taker wins."""
    conversation_id = chat_selectors.conversation_uuid(conversation_id)
    room = _check_room(room)
    with transaction.atomic():
        profile, scope = _lock_staff_with_capacity(user)
        conversation = (
            Conversation.objects.select_related("requested_staff")
            .filter(id=conversation_id)
            .first()
        )
        if conversation is None:
            raise ServiceError("not_found", _("There is no such conversation."))
        if conversation.state != Conversation.State.QUEUED:
            raise ServiceError("conflict", _("Someone else has already taken this conversation."))
        if not scope.serves(conversation):
            raise ServiceError(
                "not_allowed", _("This youth is waiting in a queue you do not serve.")
            )
        if not scope.may_take(conversation):
            raise ServiceError(
                "not_chosen", _("This youth asked for someone else. They can change their choice.")
            )
        if not _take(conversation, user=user, profile=profile, room=room):
            raise ServiceError("conflict", _("Someone else has already taken this conversation."))
        return _after_take(conversation_id, user)


def queue_claim_next(*, user, room: str | None = None) -> Conversation:
    """Take the first youth in this staff member's order (crisis, asked for me, waited longest).

    Rows another staff member is taking right now are skipped (SKIP LOCKED on PostgreSQL;
    SQLite serialises writers), and the take is the same conditional UPDATE as `queue_accept`.
    """
    room = _check_room(room)
    with transaction.atomic():
        profile, scope = _lock_staff_with_capacity(user)
        state = selectors.queue_state()
        order = selectors.claim_order(state, scope)
        if not order:
            raise ServiceError("queue_empty", _("Nobody you can take is waiting."))
        skip_locked = connection.features.has_select_for_update_skip_locked
        # First pass: lock one row at a time, skipping rows a colleague is taking right now.
        # Second pass (only if every row was busy): the plain conditional update, which waits
        # for the colleague's transaction and then sees whether the row is still queued.
        for pass_skips in (True, False) if skip_locked else (False,):
            for conversation_id in order:
                qs = Conversation.objects.filter(
                    id=conversation_id, state=Conversation.State.QUEUED
                )
                if pass_skips:
                    qs = qs.select_for_update(skip_locked=True, of=("self",))
                conversation = qs.first()
                if conversation is None:
                    continue
                if scope.may_take(conversation) and _take(
                    conversation, user=user, profile=profile, room=room
                ):
                    return _after_take(conversation.id, user)
        raise ServiceError(
            "queue_empty", _("Someone else took them first. Nobody else is waiting for you.")
        )


def _called_ticket(user, conversation_id) -> Conversation:
    """The staff member's called drop-in ticket, locked (inside a transaction)."""
    conversation = chat_selectors.conversation_for(
        Actor.for_staff(user), conversation_id, lock=True
    )
    if conversation.channel != Conversation.Channel.DROPIN:
        raise ServiceError("not_dropin", _("Only drop-in tickets are called to a room."))
    if conversation.state != Conversation.State.ACTIVE:
        raise ServiceError("closed", _("This ticket is not called."))
    return conversation


def dropin_arrived(*, user, conversation_id) -> Conversation:
    """The called youth came to the room: the ticket is no longer at risk of no-show."""
    with transaction.atomic():
        conversation = _called_ticket(user, conversation_id)
        if conversation.arrived_at is None:
            conversation.arrived_at = timezone.now()
            conversation.save(update_fields=["arrived_at"])
            events.publish_on_commit(
                events.conversation_group(conversation.id),
                chat_selectors.assigned_frame(conversation),
            )
    return conversation


def _no_show(conversation: Conversation, now) -> None:
    conversation.state = Conversation.State.NO_SHOW
    conversation.ended_at = now
    conversation.save(update_fields=["state", "ended_at"])
    stats_record_closed(conversation)
    # Both sides follow the conversation's group (every tab of the staff member too).
    events.publish_on_commit(
        events.conversation_group(conversation.id),
        chat_selectors.ended_frame(conversation, by="system"),
    )
    broadcast.queue_changed()


def dropin_no_show(*, user, conversation_id) -> Conversation:
    """Staff mark a called ticket as not shown up (counted, never held against the youth)."""
    with transaction.atomic():
        conversation = _called_ticket(user, conversation_id)
        if conversation.arrived_at:
            raise ServiceError(
                "conflict", _("Only a called ticket nobody came for can be a no-show.")
            )
        _no_show(conversation, timezone.now())
    return conversation


def queue_tick(*, now=None) -> dict:
    """Time-driven changes, safe to run from every worker at once (each a conditional write):

    - a named request waiting longer than YOUTHHUB_NAMED_WAIT_SECONDS gets a switch offer
      (the youth decides; nobody is moved without asking);
    - a called drop-in ticket nobody came for within YOUTHHUB_NOSHOW_SECONDS is a no-show.
    """
    now = now or timezone.now()
    named_due = now - timedelta(seconds=settings.YOUTHHUB_NAMED_WAIT_SECONDS)
    offered = Conversation.objects.filter(
        state=Conversation.State.QUEUED,
        requested_staff__isnull=False,
        switch_offered_at__isnull=True,
        chosen_at__lte=named_due,
    ).update(switch_offered_at=now)
    no_shows = 0
    called_due = now - timedelta(seconds=settings.YOUTHHUB_NOSHOW_SECONDS)
    due_ids = list(
        Conversation.objects.filter(
            state=Conversation.State.ACTIVE,
            channel=Conversation.Channel.DROPIN,
            arrived_at__isnull=True,
            assigned_at__lte=called_due,
        ).values_list("id", flat=True)
    )
    for conversation_id in due_ids:
        with transaction.atomic():
            conversation = (
                Conversation.objects.select_for_update(of=("self",))
                .filter(
                    id=conversation_id,
                    state=Conversation.State.ACTIVE,
                    arrived_at__isnull=True,
                )
                .first()
            )
            if conversation is not None:
                _no_show(conversation, now)
                no_shows += 1
    if offered:
        with transaction.atomic():
            broadcast.queue_changed()
    sampled = capacity_sample(now)  # once a minute, whichever worker ticks first
    return {"switch_offers": offered, "no_shows": no_shows, "capacity_samples": sampled}


def timers_hold(*, name: str, until) -> None:
    """Hold the workers' timers until `until` (real time; `dropin.ticker.tick` skips while any
    hold is ahead). Holding again moves `until`."""
    TimerHold.objects.update_or_create(name=name, defaults={"until": until})


def timers_release(*, name: str) -> None:
    TimerHold.objects.filter(name=name).delete()


# ---------------------------------------------------------------------------------------------
# Capacity and transfers between staff

MAX_CAPACITY = 10


def staff_set_capacity(*, user, capacity: int) -> StaffProfile:
    """How many chats this person takes at once (1–10). Open chats above it stay open."""
    if type(capacity) is not int or not 1 <= capacity <= MAX_CAPACITY:
        raise ServiceError(
            "bad_capacity", _("Capacity is a number from 1 to {n}.").format(n=MAX_CAPACITY)
        )
    profile = _profile_of(user)
    with transaction.atomic():
        StaffProfile.objects.filter(pk=profile.pk).update(capacity=capacity)
        broadcast.queue_changed()  # free places change everyone's estimate
    profile.capacity = capacity
    return profile


def _transfer_target(target, conversation: Conversation, user) -> dict:
    if not isinstance(target, dict) or len(target) != 1:
        raise ServiceError("bad_target", _('Transfer to {"staff": id} or {"role": name}.'))
    ((kind, value),) = target.items()
    if kind == "staff":
        if _staff_id(value) is None or value == user.id:
            raise ServiceError("bad_target", _("Choose a colleague."))
        profile = StaffProfile.objects.filter(user_id=value, user__is_active=True).first()
        if profile is None or not selectors.staff_scope(profile).serves(conversation):
            raise ServiceError("bad_target", _("That colleague does not serve this youth's queue."))
        if profile.user_id not in {s.user_id for s in selectors.on_duty()}:
            raise ServiceError(
                "not_on_duty", _("{name} is not on right now.").format(name=profile.display_name)
            )
        return {"to_staff": profile.user}
    if kind == "role":
        if value not in Role.values:
            raise ServiceError("bad_target", _("There is no such role."))
        return {"to_role": value}
    raise ServiceError("bad_target", _('Transfer to {"staff": id} or {"role": name}.'))


def transfer_offer(*, user, conversation_id, target, note: str) -> Transfer:
    """Offer an active conversation to a colleague or a role, with a note for them.

    The sender stays assigned (and keeps chatting) until someone accepts, so the youth is
    never alone in between. One pending transfer per conversation.
    """
    if not isinstance(note, str) or not note.strip():
        raise ServiceError("note_required", _("Write a short note for your colleague."))
    with transaction.atomic():
        conversation = chat_selectors.conversation_for(
            Actor.for_staff(user), conversation_id, lock=True
        )
        if conversation.state != Conversation.State.ACTIVE:
            raise ServiceError("closed", _("Only an active conversation can be transferred."))
        if Transfer.objects.filter(
            conversation=conversation, state=Transfer.State.PENDING
        ).exists():
            raise ServiceError("conflict", _("This conversation already has a pending transfer."))
        fields = _transfer_target(target, conversation, user)
        if len(note) > settings.YOUTHHUB_MAX_MESSAGE_CHARS:
            raise ServiceError("too_long", _("The note is too long."))
        written = note_create(conversation, user, note, kind=Note.Kind.TRANSFER)
        transfer = Transfer.objects.create(
            conversation=conversation, from_staff=user, note=written, **fields
        )
        audit_record(
            "transfer.offer",
            actor=user,
            conversation_id=conversation.id,
            transfer=transfer.id,
            to_staff=fields.get("to_staff") and fields["to_staff"].id,
            to_role=fields.get("to_role"),
        )
        transfer = chat_selectors.transfer_with_relations(transfer.id)
        frame = {"type": "transfer.offer", "transfer": chat_selectors.transfer_card(transfer)}
        events.publish_on_commit(events.STAFF_QUEUE, frame)
        events.publish_on_commit(
            events.conversation_staff_group(conversation.id),
            chat_selectors.note_frame(written, note),
        )
    return transfer


def _lock_transfer(transfer: Transfer) -> None:
    """Lock the conversation, then the transfer (the order conversation_end uses too, so the
    two never deadlock), and re-read the transfer's state."""
    Conversation.objects.select_for_update().filter(pk=transfer.conversation_id).first()
    Transfer.objects.select_for_update().filter(pk=transfer.pk).first()
    transfer.refresh_from_db(fields=["state"])


def _pending_transfer_for(
    user, transfer_id, *, lock: bool
) -> tuple[Transfer, selectors.StaffScope]:
    transfer = chat_selectors.transfer_with_relations(transfer_id)
    if lock:
        _lock_transfer(transfer)
    scope = selectors.staff_scope(_profile_of(user))
    if not selectors.may_receive_transfer(chat_selectors.transfer_card(transfer), scope):
        raise ServiceError("not_allowed", _("This transfer is not for you."))
    if transfer.state != Transfer.State.PENDING:
        raise ServiceError("conflict", _("This transfer has already been answered or withdrawn."))
    return transfer, scope


def transfer_preview(*, user, transfer_id) -> dict:
    """What the receiving colleague reads before accepting: the note, the notes and the
    whole conversation. Audited as a transcript read."""
    with transaction.atomic():
        transfer, _scope = _pending_transfer_for(user, transfer_id, lock=False)
        conversation = transfer.conversation
        return {
            "type": "transfer.preview",
            "transfer": chat_selectors.transfer_card(transfer),
            "conversation": chat_selectors.conversation_summary(conversation),
            **transcript_read(user, conversation, reason="transfer", transfer=transfer.id),
        }


def transfer_accept(*, user, transfer_id) -> Conversation:
    """Take over the conversation: the youth sees the new person join, the sender lets go."""
    with transaction.atomic():
        _lock_staff_with_capacity(user)
        transfer, _scope = _pending_transfer_for(user, transfer_id, lock=True)
        moved = Conversation.objects.filter(
            id=transfer.conversation_id,
            state=Conversation.State.ACTIVE,
            assigned_staff=transfer.from_staff,
        ).update(assigned_staff=user)
        if not moved:
            raise ServiceError("conflict", _("This conversation has ended or moved meanwhile."))
        transfer_close(transfer, Transfer.State.ACCEPTED, by=user)
        return _after_take(transfer.conversation_id, user)


def transfer_decline(*, user, transfer_id) -> Transfer:
    """A named colleague says no (a role transfer waits for someone else, or is withdrawn)."""
    with transaction.atomic():
        transfer, _scope = _pending_transfer_for(user, transfer_id, lock=True)
        if transfer.to_staff_id != user.id:
            raise ServiceError("not_allowed", _("Only the named colleague can decline."))
        transfer_close(transfer, Transfer.State.DECLINED, by=user)
    return transfer


def transfer_cancel(*, user, transfer_id) -> Transfer:
    """The sender withdraws the offer and keeps the conversation."""
    with transaction.atomic():
        transfer = chat_selectors.transfer_with_relations(transfer_id)
        _lock_transfer(transfer)
        if transfer.from_staff_id != user.id:
            raise ServiceError("not_allowed", _("Only the sender can withdraw a transfer."))
        if transfer.state != Transfer.State.PENDING:
            raise ServiceError(
                "conflict", _("This transfer has already been answered or withdrawn.")
            )
        transfer_close(transfer, Transfer.State.CANCELLED, by=user)
    return transfer
