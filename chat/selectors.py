"""Reads: conversations, history and the queue, shaped as protocol frames."""

import time
import uuid
from collections import OrderedDict

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from youthhub import crypto
from youthhub.crisis import crisis_info_frame
from youthhub.staff.models import StaffProfile

from .actors import Actor
from .errors import ServiceError
from .models import Block, Conversation, ConversationKey, Message, Note, Transfer, Youth


def data_key(conversation_id) -> bytes | None:
    """The conversation's data key, or None once retention destroyed it."""
    key = ConversationKey.objects.filter(conversation_id=conversation_id).first()
    return key.unwrap(str(conversation_id)) if key else None


# Data keys of conversations being written to, kept a few minutes per process: a message
# then needs no key read. Only for encrypting: reads always take the key from the database,
# so a key destroyed by retention reads nothing at once. (A conversation whose key is gone
# takes no messages: retention destroys keys of closed conversations only.)
_SENDING_KEYS: OrderedDict[uuid.UUID, tuple[float, bytes]] = OrderedDict()
_SENDING_KEYS_SECONDS = 300.0
_SENDING_KEYS_MAX = 4096


def sending_key(conversation_id: uuid.UUID) -> bytes | None:
    """The data key to encrypt a new message of the conversation with (None once destroyed)."""
    now = time.monotonic()
    cached = _SENDING_KEYS.get(conversation_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    key = data_key(conversation_id)
    if key is not None:
        _SENDING_KEYS[conversation_id] = (now + _SENDING_KEYS_SECONDS, key)
        _SENDING_KEYS.move_to_end(conversation_id)
        while len(_SENDING_KEYS) > _SENDING_KEYS_MAX:
            _SENDING_KEYS.popitem(last=False)
    return key


def message_aad(conversation_id, seq: int) -> str:
    return f"message:{conversation_id}:{seq}"


def staff_card(user) -> dict | None:
    if user is None:
        return None
    return user.staff_profile.public_card()


def author_name(user) -> str:
    """How a staff member or a partner is named in the chat ("Kari, BUP Vestfold")."""
    profile = getattr(user, "staff_profile", None)
    if profile is not None:
        return profile.display_name
    partner = user.partner_profile
    return f"{partner.display_name}, {partner.service.name}"


def message_frame(message: Message, text: str | None, *, sender_name: str) -> dict:
    return {
        "type": "message",
        "conversation_id": str(message.conversation_id),
        "seq": message.seq,
        "sender": message.sender,
        "sender_name": sender_name,
        "text": text,
        "sent_at": message.created_at.isoformat(),
        "client_id": message.client_id,
    }


def messages(
    conversation: Conversation,
    *,
    after_seq: int,
    upto_seq: int | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Message frames with after_seq < seq <= upto_seq, in seq order, decrypted.

    Once retention destroyed the data key, `text` is None ("content deleted").
    """
    qs: QuerySet[Message] = (
        Message.objects.filter(conversation=conversation, seq__gt=after_seq)
        .select_related("staff__staff_profile", "staff__partner_profile__service")
        .order_by("seq")
    )
    if upto_seq is not None:
        qs = qs.filter(seq__lte=upto_seq)
    if limit is not None:
        qs = qs[:limit]
    rows = list(qs)
    key = data_key(conversation.id) if rows else None
    alias = conversation.youth.alias
    frames = []
    for row in rows:
        text = None
        if key is not None:
            text = crypto.open_text(
                key, bytes(row.body), aad=message_aad(row.conversation_id, row.seq)
            )
        name = alias if row.sender == Message.Sender.YOUTH else author_name(row.staff)
        frames.append(message_frame(row, text, sender_name=name))
    return frames


def row_uuid(value, not_found: str) -> uuid.UUID:
    """A row id (UUID) from a client, or `not_found` with this message if it cannot be one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ServiceError("not_found", not_found) from None


def conversation_uuid(value) -> uuid.UUID:
    return row_uuid(value, _("There is no such conversation."))


def conversation_for(actor: Actor, conversation_id, *, lock: bool = False) -> Conversation:
    """The conversation if the actor is part of it; otherwise `not_found` / `not_allowed`.

    Staff: the one it is assigned to (nobody once it was passed to a partner). Partners: of
    the service of a valid warm handover of it (youthhub.handover.selectors.partner_may_join)."""
    conversation_id = conversation_uuid(conversation_id)
    qs = Conversation.objects.select_related(*CONVERSATION_RELATED)
    if lock:
        qs = qs.select_for_update(of=("self",))
    try:
        conversation = qs.get(id=conversation_id)
    except Conversation.DoesNotExist:
        raise ServiceError("not_found", _("There is no such conversation.")) from None
    if actor.kind == "youth":
        allowed = conversation.youth_id == actor.youth.id
    elif actor.kind == "partner":
        from youthhub.handover.selectors import partner_may_join

        allowed = partner_may_join(actor.user, conversation.id)
    else:
        allowed = conversation.assigned_staff_id == actor.user.id
    if not allowed:
        raise ServiceError("not_allowed", _("You are not part of this conversation."))
    return conversation


# What a conversation summary reads besides the row (conversation_summary, partner_lead):
# loaded with it wherever a socket takes a conversation to summarise.
CONVERSATION_RELATED = (
    "youth",
    "assigned_staff__staff_profile",
    "led_by__service",
    "led_by__partner_joined_by__partner_profile",
)


def youth_open_conversation(youth: Youth) -> Conversation | None:
    return (
        Conversation.objects.select_related(*CONVERSATION_RELATED)
        .filter(youth=youth, state__in=Conversation.OPEN_STATES)
        .first()
    )


def partner_lead(conversation: Conversation) -> dict | None:
    """Who leads a chat passed to a partner: {name, service, service_id} (the partner who
    joined, and their service), or None while a staff member leads it (or nobody has been
    passed it). Reads only what CONVERSATION_RELATED loaded with the row: the sockets build
    summaries in async code, where a query is refused."""
    if conversation.led_by_id is None:
        return None
    handover = conversation.led_by
    partner = getattr(handover.partner_joined_by, "partner_profile", None)
    return {
        "name": partner.display_name if partner else None,
        "service": handover.service.name,
        "service_id": handover.service_id,
    }


def conversation_summary(conversation: Conversation) -> dict:
    """The conversation's state as both sides see it in `welcome` and `assigned`. `staff`
    is null and `partner` says who continues once it was passed to a partner."""
    return {
        "id": str(conversation.id),
        "state": conversation.state,
        "alias": conversation.youth.alias,
        "staff": staff_card(conversation.assigned_staff),
        "partner": partner_lead(conversation),
        "channel": conversation.channel,
        "ticket": conversation.ticket or None,
        "room": conversation.room or None,
        "arrived": conversation.arrived_at is not None,
        "target": conversation.target,
        "topic": conversation.topic or None,
        "crisis": conversation.crisis,
        "latest_seq": conversation.latest_seq,
        "youth_read_seq": conversation.youth_read_seq,
        "staff_read_seq": conversation.staff_read_seq,
        "created_at": conversation.created_at.isoformat(),
    }


def assigned_frame(conversation: Conversation) -> dict:
    return {"type": "assigned", "conversation": conversation_summary(conversation)}


def typing_frame(conversation_id, who: str, active: bool) -> dict:
    return {
        "type": "typing",
        "conversation_id": str(conversation_id),
        "who": who,
        "active": bool(active),
    }


def passed_frame(conversation: Conversation, *, by) -> dict:
    """To everyone in the chat: the staff member `by` let go, the partner continues (the
    youth is told in plain words who is there now; the staff sockets stop following it)."""
    profile = getattr(by, "staff_profile", None)
    return {
        "type": "passed",
        "conversation_id": str(conversation.id),
        "from": profile.display_name if profile else None,
        "partner": partner_lead(conversation),
        "conversation": conversation_summary(conversation),
    }


def ended_frame(conversation: Conversation, *, by: str) -> dict:
    """Both sides see this; staff-only facts (tags, triage) are never in it."""
    return {
        "type": "ended",
        "conversation_id": str(conversation.id),
        "state": conversation.state,
        "by": by,
        "feedback": conversation.feedback_requested,
    }


# -- staff-only reads --------------------------------------------------------------------------


def note_aad(conversation_id, note_id) -> str:
    return f"note:{conversation_id}:{note_id}"


def note_frame(note: Note, text: str | None) -> dict:
    return {
        "type": "note",
        "conversation_id": str(note.conversation_id),
        "id": str(note.id),
        "kind": note.kind,
        "author": note.author.staff_profile.display_name,
        "text": text,
        "created_at": note.created_at.isoformat(),
        "client_id": note.client_id or None,
    }


def notes(conversation: Conversation) -> list[dict]:
    """The conversation's internal notes, oldest first, decrypted (text None once deleted)."""
    rows = list(
        Note.objects.filter(conversation=conversation).select_related("author__staff_profile")
    )
    key = data_key(conversation.id) if rows else None
    return [
        note_frame(
            row,
            crypto.open_text(key, bytes(row.body), aad=note_aad(row.conversation_id, row.id))
            if key is not None
            else None,
        )
        for row in rows
    ]


def earlier_with(conversation: Conversation, user) -> list[Conversation]:
    """Earlier conversations of the same youth that `user` was part of (assigned, or wrote in),
    still within retention (their data key exists): continuity with a primary contact."""
    ended = [Conversation.State.ENDED]
    part_of = Conversation.objects.filter(youth_id=conversation.youth_id, state__in=ended).exclude(
        id=conversation.id
    )
    mine = Q(assigned_staff=user) | Q(led_by__chat_passed_by=user)
    ids = set(part_of.filter(mine).values_list("id", flat=True))
    ids |= set(
        Message.objects.filter(conversation__in=part_of, staff=user).values_list(
            "conversation_id", flat=True
        )
    )
    kept = ConversationKey.objects.filter(conversation_id__in=ids, wrapped__isnull=False)
    return list(
        Conversation.objects.filter(id__in=kept.values("conversation_id"))
        .select_related("led_by")
        .order_by("-created_at")
    )


def staff_visible_upto(conversation: Conversation) -> int | None:
    """The last seq staff may read of a conversation: all of it (None), or, once it was passed
    to a partner, up to the pass (what the youth said to the partner after is not theirs)."""
    if conversation.led_by_id is None:
        return None
    return conversation.led_by.chat_passed_seq or 0


def earlier_card(conversation: Conversation) -> dict:
    upto = staff_visible_upto(conversation)  # what staff may read of it
    return {
        "id": str(conversation.id),
        "created_at": conversation.created_at.isoformat(),
        "ended_at": conversation.ended_at.isoformat() if conversation.ended_at else None,
        "topic": conversation.topic or None,
        "messages": conversation.latest_seq if upto is None else upto,
    }


def staff_context(user, conversation_id) -> dict:
    """Staff-only facts about a conversation they are part of: its internal notes and the
    earlier conversations with this youth they may open (metadata only: opening one is an
    audited read, services.earlier_read)."""
    conversation = conversation_for(Actor.for_staff(user), conversation_id)
    return {
        "type": "staff_context",
        "conversation_id": str(conversation.id),
        "notes": notes(conversation),
        "earlier": [earlier_card(c) for c in earlier_with(conversation, user)],
    }


def transfer_card(transfer: Transfer) -> dict:
    """A transfer as staff see it in offers and updates: who, to whom, never the note text."""
    c = transfer.conversation
    to = transfer.to_staff.staff_profile.public_card() if transfer.to_staff_id else None
    return {
        "id": str(transfer.id),
        "conversation_id": str(c.id),
        "alias": c.youth.alias,
        "ticket": c.ticket or None,
        "channel": c.channel,
        "pool_id": c.pool_id,
        "site_id": c.site_id,
        "crisis": c.crisis,
        "from": transfer.from_staff.staff_profile.public_card(),
        "to_staff": to,
        "to_role": transfer.to_role or None,
        "state": transfer.state,
        "created_at": transfer.created_at.isoformat(),
    }


def transfer_with_relations(transfer_id) -> Transfer:
    transfer_id = row_uuid(transfer_id, _("There is no such transfer."))
    transfer = (
        Transfer.objects.select_related(
            "conversation__youth",
            "from_staff__staff_profile",
            "to_staff__staff_profile",
        )
        .filter(id=transfer_id)
        .first()
    )
    if transfer is None:
        raise ServiceError("not_found", _("There is no such transfer."))
    return transfer


def pending_transfers() -> list[Transfer]:
    return list(
        Transfer.objects.filter(state=Transfer.State.PENDING)
        .select_related(
            "conversation__youth", "from_staff__staff_profile", "to_staff__staff_profile"
        )
        .order_by("created_at")
    )


def previous_staff(youth: Youth, limit: int = 3) -> list[dict]:
    """Staff this youth talked with before (within retention), most recent first: the youth
    may ask for the same person again."""
    rows = (
        Conversation.objects.filter(
            Q(assigned_staff__is_active=True) | Q(led_by__chat_passed_by__is_active=True),
            youth=youth,
            state=Conversation.State.ENDED,
            key__wrapped__isnull=False,
        )
        .select_related("assigned_staff__staff_profile", "led_by__chat_passed_by__staff_profile")
        .order_by("-created_at")
    )
    cards, seen = [], set()
    for row in rows[:50]:
        # A chat passed to a partner: the staff member who talked with them before the pass.
        person = row.assigned_staff or (row.led_by.chat_passed_by if row.led_by_id else None)
        profile = getattr(person, "staff_profile", None)
        if profile is None or person.id in seen:
            continue
        seen.add(person.id)
        cards.append(profile.public_card())
        if len(cards) == limit:
            break
    return cards


def staff_open_conversations(user) -> list[Conversation]:
    return list(
        Conversation.objects.select_related(*CONVERSATION_RELATED)
        .filter(assigned_staff=user, state=Conversation.State.ACTIVE)
        .order_by("assigned_at")
    )


def history(
    actor: Actor,
    conversation_id,
    *,
    after_seq: int,
    upto_seq: int | None = None,
    limit: int | None = None,
) -> tuple[list[dict], int]:
    """(message frames after `after_seq`, latest seq) of a conversation the actor is part of."""
    conversation = conversation_for(actor, conversation_id)
    if actor.kind == "partner":
        from youthhub.handover.selectors import partner_visible_from

        after_seq = max(after_seq, partner_visible_from(actor.user, conversation.id))
    frames = messages(conversation, after_seq=after_seq, upto_seq=upto_seq, limit=limit)
    return frames, conversation.latest_seq


def staff_profile(user):
    """The user's staff profile, or None: a user without one is not staff."""
    if not user.is_authenticated or not user.is_active:
        return None
    return StaffProfile.objects.filter(user=user).first()


# -- blocks (chat.services.youth_block) --------------------------------------------------------


def active_block(youth: Youth, now=None) -> Block | None:
    """The block in force on this identity now, or None."""
    return Block.objects.filter(youth=youth, until__gt=now or timezone.now()).first()


def blocked_frame(until) -> dict:
    """What a blocked youth's page needs: until when, and the numbers to call meanwhile (in
    the language active now: the youth's socket builds it in the youth's language)."""
    if isinstance(until, Block):
        until = until.until
    return {
        "type": "blocked",
        "until": until.isoformat() if not isinstance(until, str) else until,
        "lines": crisis_info_frame()["lines"],
    }


def youth_blocked_state(youth: Youth) -> dict | None:
    """For the youth's `welcome`: {"until", "lines"} while blocked, else None."""
    block = active_block(youth)
    if block is None:
        return None
    frame = blocked_frame(block)
    del frame["type"]
    return frame


def block_card(block: Block, *, active: bool = True) -> dict:
    """A block as staff see it (never shown to a youth): who, until when, why (a key)."""
    by = getattr(block.by, "staff_profile", None) if block.by_id else None
    return {
        "id": str(block.id),
        "conversation_id": str(block.conversation_id) if block.conversation_id else None,
        "alias": block.youth.alias,
        "until": block.until.isoformat(),
        "reason": block.reason or None,
        "by": by.public_card() if by else None,
        "created_at": block.created_at.isoformat(),
        "active": active,
    }


def supervisor_ids() -> list[int]:
    return list(
        StaffProfile.objects.filter(is_supervisor=True, user__is_active=True).values_list(
            "user_id", flat=True
        )
    )


def staff_blocks(user) -> list[dict]:
    """Blocks in force that this person may lift: their own; a supervisor's: all."""
    profile = staff_profile(user)
    if profile is None:
        return []
    blocks = Block.objects.filter(until__gt=timezone.now()).select_related(
        "youth", "by__staff_profile"
    )
    if not profile.is_supervisor:
        blocks = blocks.filter(by=user)
    return [block_card(b) for b in blocks.order_by("until")]
