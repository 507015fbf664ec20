"""Every state change of the chat, one function per domain action.

Each action validates, writes inside one transaction, and publishes its events only after
the commit (chat.events). A ServiceError means nothing was written.
"""

import hashlib
import hmac
import secrets
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from dropin.broadcast import queue_changed
from dropin.hours import OSLO
from youthhub import crypto, ratelimit
from youthhub.audit.services import audit_record
from youthhub.stats.services import stats_record_about, stats_record_closed, stats_record_feedback

from . import events, selectors
from .actors import Actor
from .aliases import random_alias
from .errors import ServiceError
from .models import (
    ABOUT_QUESTIONS,
    BLOCK_DURATIONS,
    BLOCK_REASONS,
    STAFF_TAGS,
    Block,
    Conversation,
    ConversationKey,
    Feedback,
    Message,
    Note,
    Transfer,
    Triage,
    Youth,
)

# ---------------------------------------------------------------------------------------------
# Anonymous identity

RETURN_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: easy to read aloud
RETURN_CODE_SELECTOR_LEN = 4
RETURN_CODE_SECRET_LEN = 8
RETURN_CODE_MAX_FAILURES = 5
RETURN_CODE_LOCKOUT = timedelta(minutes=15)
# scrypt cost: ~16 MiB and tens of milliseconds per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
LAST_SEEN_GRANULARITY = timedelta(hours=1)
# Staff may block from a conversation while it is open and for this long after it ended.
BLOCK_AFTER_END = timedelta(hours=24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _scrypt(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 2**20, dklen=32
    )


def _hash_return_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${_scrypt(secret, salt).hex()}"


def _verify_return_secret(secret: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        assert (int(n), int(r), int(p)) == (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    except (ValueError, AssertionError):
        return False
    return hmac.compare_digest(_scrypt(secret, bytes.fromhex(salt)).hex(), digest)


def normalise_return_code(code: str) -> str:
    return "".join(ch for ch in str(code).upper() if ch.isalnum())


def youth_session_create() -> tuple[Youth, str]:
    """A new anonymous identity. Returns (youth, token); only the token's hash is stored."""
    if not ratelimit.allow(
        "youth-session", limit=settings.YOUTHHUB_SESSIONS_PER_MINUTE, window_seconds=60
    ):
        raise ServiceError(
            "rate_limited", _("Many people are starting a chat right now. Try again in a minute.")
        )
    token = secrets.token_urlsafe(32)
    youth = Youth.objects.create(
        alias=random_alias(), token_hash=hash_token(token), last_seen_at=timezone.now()
    )
    return youth, token


def youth_authenticate(token) -> Youth:
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        raise ServiceError("unauthorized", _("This chat session is not valid. Start a new one."))
    youth = Youth.objects.filter(token_hash=hash_token(token)).first()
    if youth is None:
        raise ServiceError("unauthorized", _("This chat session is not valid. Start a new one."))
    now = timezone.now()
    if now - youth.last_seen_at > LAST_SEEN_GRANULARITY:
        Youth.objects.filter(pk=youth.pk).update(last_seen_at=now)
    return youth


def youth_return_code_issue(*, youth: Youth) -> str:
    """A new return code for this youth (the old one stops working). Shown once."""
    secret = "".join(secrets.choice(RETURN_CODE_ALPHABET) for _ in range(RETURN_CODE_SECRET_LEN))
    hashed = _hash_return_secret(secret)
    for _attempt in range(10):
        selector = "".join(
            secrets.choice(RETURN_CODE_ALPHABET) for _ in range(RETURN_CODE_SELECTOR_LEN)
        )
        try:
            with transaction.atomic():
                Youth.objects.filter(pk=youth.pk).update(
                    return_code_selector=selector,
                    return_code_hash=hashed,
                    return_code_failures=0,
                    return_code_locked_until=None,
                )
        except IntegrityError:
            continue  # selector taken by someone else: draw again
        code = selector + secret
        return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
    raise ServiceError("unavailable", _("Could not make a code right now. Try again."))


def youth_resume(*, return_code: str) -> tuple[Youth, str]:
    """Resume an identity on this device with its return code; issues a fresh token.

    The previous token stops working (a lost or shared phone loses access). Guessing is
    limited per code (lockout after RETURN_CODE_MAX_FAILURES) and in total per minute.
    """
    if not ratelimit.allow(
        "youth-resume", limit=settings.YOUTHHUB_RESUMES_PER_MINUTE, window_seconds=60
    ):
        raise ServiceError(
            "rate_limited", _("Too many tries right now. Wait a minute and try again.")
        )
    code = normalise_return_code(return_code)
    wrong = ServiceError("bad_code", _("That code does not match. Check it and try again."))
    if len(code) != RETURN_CODE_SELECTOR_LEN + RETURN_CODE_SECRET_LEN or any(
        ch not in RETURN_CODE_ALPHABET for ch in code
    ):
        raise wrong
    selector, secret = code[:RETURN_CODE_SELECTOR_LEN], code[RETURN_CODE_SELECTOR_LEN:]
    now = timezone.now()
    with transaction.atomic():
        youth = Youth.objects.select_for_update().filter(return_code_selector=selector).first()
        if youth is None:
            _scrypt(secret, b"0" * 16)  # same cost as a real check: no timing hint
            outcome = "wrong"
        elif youth.return_code_locked_until and youth.return_code_locked_until > now:
            outcome = "locked"
        elif not _verify_return_secret(secret, youth.return_code_hash):
            youth.return_code_failures += 1
            if youth.return_code_failures >= RETURN_CODE_MAX_FAILURES:
                youth.return_code_failures = 0
                youth.return_code_locked_until = now + RETURN_CODE_LOCKOUT
            youth.save(update_fields=["return_code_failures", "return_code_locked_until"])
            outcome = "wrong"
        else:
            token = secrets.token_urlsafe(32)
            youth.token_hash = hash_token(token)
            youth.return_code_failures = 0
            youth.return_code_locked_until = None
            youth.last_seen_at = now
            youth.save()
            outcome = "ok"
    if outcome == "locked":
        raise ServiceError(
            "rate_limited", _("Too many wrong tries with this code. Wait 15 minutes.")
        )
    if outcome == "wrong":
        raise wrong
    return youth, token


# ---------------------------------------------------------------------------------------------
# Conversations


def conversation_key_create(conversation: Conversation) -> None:
    """Give a new conversation its own data key, wrapped by the current master key."""
    _key, stored = ConversationKey.wrap_new(str(conversation.id))
    ConversationKey.objects.create(conversation=conversation, **stored)


def message_send(*, actor: Actor, conversation_id, client_id: str, text: str) -> tuple[dict, bool]:
    """Store a message with the next seq and publish it. Returns (message frame, created).

    Idempotent on (conversation, sender, client_id): a resend returns the stored message (and
    counts against no limit). A youth sends nothing while blocked (`blocked`) and at most
    YOUTHHUB_MESSAGES_PER_MINUTE messages a minute across all their sockets (`rate_limited`).
    """
    _check_text(text)
    if actor.kind in ("youth", "staff"):
        try:
            sent = _message_send_usual(actor, conversation_id, client_id, text)
        except IntegrityError:  # a resend of a stored client_id: the full path returns it
            sent = None
        if sent is not None:
            return sent, True
    with transaction.atomic():
        conversation = selectors.conversation_for(actor, conversation_id, lock=True)
        existing = Message.objects.filter(
            conversation=conversation, sender=actor.kind, client_id=client_id
        ).first()
        if existing is not None:
            frame = selectors.messages(
                conversation, after_seq=existing.seq - 1, upto_seq=existing.seq
            )[0]
            return frame, False
        if actor.kind == "youth":
            youth_check_not_blocked(actor.youth)
        if not conversation.is_open:
            raise ServiceError("closed", _("This conversation has ended."))
        if actor.kind == "youth":
            _check_youth_message_rate(actor.youth)
        seq = conversation.next_seq
        conversation.next_seq = seq + 1
        conversation.save(update_fields=["next_seq"])
        key = selectors.data_key(conversation.id)
        body = crypto.seal_text(key, text, aad=selectors.message_aad(conversation.id, seq))
        message = Message.objects.create(
            conversation=conversation,
            seq=seq,
            sender=actor.kind,
            staff=actor.user if actor.kind != "youth" else None,
            body=body,
            client_id=client_id,
        )
        name = actor.youth.alias if actor.kind == "youth" else selectors.author_name(actor.user)
        frame = selectors.message_frame(message, text, sender_name=name)
        events.publish_on_commit(events.conversation_group(conversation.id), frame)
    return frame, True


def _message_send_usual(actor: Actor, conversation_id, client_id: str, text: str) -> dict | None:
    """The usual send in four statements (message_send took ten): the youth or the assigned
    staff member writes a new message in an open conversation. None when it is anything else
    (not a member, closed, no such conversation: the full path gives the answer); a resend of
    a stored client_id raises IntegrityError (the full path returns the stored message).

    One UPDATE ... RETURNING takes the next seq, checks membership and openness and locks the
    row, as the full path's SELECT ... FOR UPDATE does. The checks that refuse a stored message
    (blocked, too many a minute) come after the INSERT, so a resend is still answered first and
    a refusal rolls everything back."""
    if not connection.features.can_return_columns_from_insert:  # SQLite before 3.35
        return None
    cid = selectors.conversation_uuid(conversation_id)
    youth = actor.kind == "youth"
    key = selectors.sending_key(cid)  # before the seq is taken: nothing to undo if None
    if key is None:
        return None
    with transaction.atomic():
        seq = _next_seq(cid, youth=actor.youth.id if youth else None, staff=actor.user)
        if seq is None:
            return None
        message = Message.objects.create(
            conversation_id=cid,
            seq=seq,
            sender=actor.kind,
            staff=None if youth else actor.user,
            body=crypto.seal_text(key, text, aad=selectors.message_aad(cid, seq)),
            client_id=client_id,
        )
        if youth:
            youth_check_not_blocked(actor.youth)
            _check_youth_message_rate(actor.youth)
        name = actor.youth.alias if youth else selectors.author_name(actor.user)
        frame = selectors.message_frame(message, text, sender_name=name)
        events.publish_on_commit(events.conversation_group(cid), frame)
    return frame


def _next_seq(conversation_id, *, youth=None, staff=None) -> int | None:
    """Take the next seq of an open conversation the youth (by id) or staff member is part of,
    holding its row lock until commit; None if there is no such conversation."""
    table = connection.ops.quote_name(Conversation._meta.db_table)
    member, value = ("youth_id", youth) if youth is not None else ("assigned_staff_id", staff.pk)
    field = Conversation._meta.get_field(member.removesuffix("_id"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_seq = next_seq + 1 "  # noqa: S608 (names from the model)
            f"WHERE id = %s AND {member} = %s AND state IN (%s, %s) RETURNING next_seq - 1",
            [
                Conversation._meta.pk.get_db_prep_value(conversation_id, connection),
                field.get_db_prep_value(value, connection),
                *Conversation.OPEN_STATES,
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def conversation_typing(*, actor: Actor, conversation_id, active: bool) -> None:
    """Ephemeral: nothing is stored; the other side sees a typing indicator. (A socket that
    checked this within the last half minute relays it itself: consumers.on_typing.)"""
    conversation = selectors.conversation_for(actor, conversation_id)
    if not conversation.is_open:
        raise ServiceError("closed", _("This conversation has ended."))
    events.publish_on_commit(
        events.conversation_group(conversation.id),
        selectors.typing_frame(conversation.id, actor.kind, active),
    )


def conversation_mark_read(*, actor: Actor, conversation_id, seq: int) -> int:
    """Record that the actor has read up to `seq`; returns the (monotonic) read mark."""
    if actor.kind == "partner":
        # The read mark tells the youth what *their* helper has read: a partner's reads count
        # only once the chat was passed to them (then the partner is that helper).
        conversation = selectors.conversation_for(actor, conversation_id)
        if not conversation.partner_led:
            return seq
    # The helper's mark: the staff member's, or the partner's once the chat was passed.
    field = "youth_read_seq" if actor.kind == "youth" else "staff_read_seq"
    # The usual case in one statement (a receipt follows every message): a member moves their
    # mark forward within what exists. Anything else takes the locked path for its answer.
    if actor.kind == "youth":
        member = Q(youth_id=actor.youth.id)
    elif actor.kind == "partner":
        member = Q(led_by__isnull=False)  # checked just above: the partner leads it
    else:
        member = Q(assigned_staff_id=actor.user.id)
    cid = selectors.conversation_uuid(conversation_id)
    if seq > 0 and Conversation.objects.filter(
        member, id=cid, next_seq__gt=seq, **{f"{field}__lt": seq}
    ).update(**{field: seq}):
        _publish_read(cid, actor.kind, seq)
        return seq
    with transaction.atomic():
        conversation = selectors.conversation_for(actor, conversation_id, lock=True)
        if seq < 0 or seq > conversation.latest_seq:
            raise ServiceError(
                "bad_seq", _("seq must be between 0 and {n}.").format(n=conversation.latest_seq)
            )
        if seq <= getattr(conversation, field):
            return getattr(conversation, field)
        setattr(conversation, field, seq)
        conversation.save(update_fields=[field])
        _publish_read(conversation.id, actor.kind, seq)
    return seq


def _publish_read(conversation_id, reader: str, seq: int) -> None:
    events.publish_on_commit(
        events.conversation_group(conversation_id),
        {"type": "read", "conversation_id": str(conversation_id), "reader": reader, "seq": seq},
    )


def _check_end_details(tags, triage) -> tuple[list[str], str]:
    tags = list(dict.fromkeys(tags or []))
    unknown = [tag for tag in tags if tag not in STAFF_TAGS]
    if unknown:
        raise ServiceError(
            "bad_tags",
            _("Unknown tags {tags}; use: {known}.").format(
                tags=unknown, known=", ".join(STAFF_TAGS)
            ),
        )
    triage = triage or ""
    if triage and triage not in Triage.values:
        raise ServiceError("bad_triage", _("Triage is green, yellow or red."))
    return tags, triage


def conversation_end(
    *,
    actor: Actor,
    conversation_id,
    tags: list[str] | None = None,
    triage: str | None = None,
    feedback: bool = False,
) -> Conversation:
    """End an active chat, or (youth) leave the queue: that is 'abandoned'.

    Staff may tag it (STAFF_TAGS), give a triage colour and ask the youth for feedback; the
    tags and colour are staff-only. A pending transfer is cancelled. A partner ends only a
    chat that was passed to their service (youthhub.handover.services.handover_chat_pass);
    audited as `handover.chat_end`.
    """
    if actor.kind != "staff" and (tags or triage or feedback):
        raise ServiceError("not_allowed", _("Only staff tag a conversation."))
    tags, triage = _check_end_details(tags, triage)
    with transaction.atomic():
        conversation = selectors.conversation_for(actor, conversation_id, lock=True)
        if actor.kind == "partner" and not conversation.partner_led:
            raise ServiceError(
                "not_allowed",
                _("The staff member leads this chat and ends it, until they pass it to you."),
            )
        if not conversation.is_open:
            raise ServiceError("closed", _("This conversation has already ended."))
        if actor.kind == "partner":
            audit_record(
                "handover.chat_end",
                actor=actor.user,
                actor_kind="partner",
                conversation_id=conversation.id,
                handover=conversation.led_by_id,
                service=conversation.led_by.service_id,
            )
        _close_open(
            conversation,
            by=actor.kind,
            user=actor.user,
            tags=tags,
            triage=triage,
            feedback=feedback,
        )
    return conversation


def conversation_let_go(conversation: Conversation, *, by) -> None:
    """The staff member `by` let go of a conversation the caller has locked and reassigned
    (passed to a partner): a pending transfer of it is withdrawn, and the queue hears that
    their capacity freed up."""
    _close_pending_transfer(conversation, Transfer.State.CANCELLED, by=by)
    queue_changed()


def conversation_close(conversation: Conversation, *, by: str, user=None) -> None:
    """End an open conversation the caller has locked, inside its transaction (for another
    app's action that leaves nobody in it: a partner-led chat whose consent ended)."""
    _close_open(conversation, by=by, user=user)


def _close_open(
    conversation: Conversation, *, by: str, user, tags=(), triage="", feedback=False
) -> None:
    """End an open conversation locked by the caller (inside its transaction): a waiting one
    is 'abandoned', an active one 'ended'. Statistics, transfers and the queue follow."""
    was_queued = conversation.state == Conversation.State.QUEUED
    conversation.state = Conversation.State.ABANDONED if was_queued else Conversation.State.ENDED
    conversation.ended_at = timezone.now()
    conversation.tags = list(tags)
    conversation.triage = triage
    conversation.feedback_requested = bool(feedback) and not was_queued
    conversation.save(update_fields=["state", "ended_at", "tags", "triage", "feedback_requested"])
    _close_pending_transfer(conversation, Transfer.State.CANCELLED, by=user)
    stats_record_closed(conversation)
    events.publish_on_commit(
        events.conversation_group(conversation.id), selectors.ended_frame(conversation, by=by)
    )
    queue_changed()  # a place in the queue or a staff member's capacity freed up


def _close_pending_transfer(conversation: Conversation, state: str, *, by) -> None:
    pending = Transfer.objects.filter(conversation=conversation, state=Transfer.State.PENDING)
    for transfer in pending.select_related(
        "conversation__youth", "from_staff__staff_profile", "to_staff__staff_profile"
    ):
        transfer_close(transfer, state, by=by)


def transfer_close(transfer: Transfer, state: str, *, by) -> None:
    """Mark a pending transfer decided (inside the caller's transaction) and tell staff."""
    transfer.state = state
    transfer.decided_at = timezone.now()
    transfer.decided_by = by
    transfer.save(update_fields=["state", "decided_at", "decided_by"])
    audit_record(
        f"transfer.{state}",
        actor=by,
        conversation_id=transfer.conversation_id,
        transfer=transfer.id,
    )
    frame = {"type": "transfer.closed", "transfer": selectors.transfer_card(transfer)}
    events.publish_on_commit(events.STAFF_QUEUE, frame)


# ---------------------------------------------------------------------------------------------
# Staff-only: internal notes, continuity


def note_add(
    *, actor: Actor, conversation_id, client_id: str, text: str, kind: str = Note.Kind.NOTE
):
    """An internal note on a conversation the staff member is part of. Never sent to the
    youth (published on the staff-only group), encrypted under the conversation's key.
    Idempotent on client_id. Returns (note frame, created)."""
    if actor.kind != "staff":
        raise ServiceError("not_allowed", _("Only staff write notes."))
    _check_text(text)
    with transaction.atomic():
        conversation = selectors.conversation_for(actor, conversation_id, lock=True)
        if client_id:
            existing = Note.objects.filter(
                conversation=conversation, author=actor.user, client_id=client_id
            ).first()
            if existing is not None:
                frames = [f for f in selectors.notes(conversation) if f["id"] == str(existing.id)]
                return frames[0], False
        if not conversation.is_open:
            raise ServiceError("closed", _("This conversation has ended."))
        note = note_create(conversation, actor.user, text, kind=kind, client_id=client_id)
        frame = selectors.note_frame(note, text)
        events.publish_on_commit(events.conversation_staff_group(conversation.id), frame)
        audit_record("note.add", actor=actor.user, conversation_id=conversation.id, note=note.id)
    return frame, True


def note_create(conversation, author, text: str, *, kind: str, client_id: str = "") -> Note:
    key = selectors.data_key(conversation.id)
    if key is None:
        raise ServiceError("closed", _("This conversation's content has been deleted."))
    note = Note(conversation=conversation, author=author, kind=kind, client_id=client_id or "")
    note.body = crypto.seal_text(key, text, aad=selectors.note_aad(conversation.id, note.id))
    note.save()
    return note


def _check_text(text: str) -> None:
    """A message or note: not blank, at most YOUTHHUB_MAX_MESSAGE_CHARS characters."""
    if not text.strip():
        raise ServiceError("empty", _("The text is empty."))
    if len(text) > settings.YOUTHHUB_MAX_MESSAGE_CHARS:
        raise ServiceError(
            "too_long",
            _("A text can be at most {n} characters.").format(
                n=settings.YOUTHHUB_MAX_MESSAGE_CHARS
            ),
        )


def earlier_read(*, user, conversation_id, earlier_id) -> dict:
    """The transcript of an earlier conversation of the same youth, for the staff member now
    talking with them, if they were part of it and it is within retention. Audited."""
    with transaction.atomic():
        current = selectors.conversation_for(Actor.for_staff(user), conversation_id)
        if current.state != Conversation.State.ACTIVE:
            raise ServiceError("closed", _("This conversation has ended."))
        earlier_id = selectors.conversation_uuid(earlier_id)
        allowed = {c.id: c for c in selectors.earlier_with(current, user)}
        earlier = allowed.get(earlier_id)
        if earlier is None:
            raise ServiceError("not_allowed", _("You cannot read that conversation."))
        return {
            "type": "earlier",
            "conversation_id": str(current.id),
            "earlier": selectors.earlier_card(earlier),
            **transcript_read(user, earlier, reason="continuity", via=current.id),
        }


def transcript_read(user, conversation: Conversation, *, reason: str, **detail) -> dict:
    """A staff read of a conversation they are not (yet) chatting in: its messages and notes,
    written to the audit log first (inside the caller's transaction). The one way to do it."""
    audit_record(
        "transcript.read", actor=user, conversation_id=conversation.id, reason=reason, **detail
    )
    upto = selectors.staff_visible_upto(conversation)
    return {
        "messages": selectors.messages(conversation, after_seq=0, upto_seq=upto),
        "notes": selectors.notes(conversation),
    }


# ---------------------------------------------------------------------------------------------
# Youth feedback

FEEDBACK_TEXT_MAX = 1000


# How long "this conversation answered the optional questions" is remembered (in the cache,
# never on the conversation: see about_give).


def about_give(*, youth: Youth, conversation_id, answers: dict) -> None:
    """The youth's answers to the optional questions (ABOUT_QUESTIONS: age band, gender, how
    they heard of us), each one of its list or None (skipped), once per open conversation of
    theirs (`closed` after it ended: a closed conversation could be answered again and again).

    The answers become counts at once, per pool and day (stats.services.about_cells), and are
    kept nowhere else. That the conversation answered is kept only in the cache, under a keyed
    hash of its id, until the Oslo midnight after next: a mark on the conversation row would tie
    a day's counts to the few conversations that answered that day, and a mark that expires a
    fixed time after the answer would tell when it was given."""
    for name, value in answers.items():
        if name not in ABOUT_QUESTIONS or (
            value is not None and value not in ABOUT_QUESTIONS[name]
        ):
            raise ServiceError("bad_about", _("That is not one of the answers to choose from."))
    answers = {name: value for name, value in answers.items() if value is not None}
    if not answers:
        raise ServiceError("empty", _("Nothing was chosen."))
    conversation = selectors.conversation_for(Actor.for_youth(youth), conversation_id)
    if not conversation.is_open:
        raise ServiceError("closed", _("This conversation has ended."))
    once = "about-answered:" + salted_hmac("about", conversation.id.bytes).hexdigest()
    now = timezone.now()
    expires = datetime.combine(now.astimezone(OSLO).date() + timedelta(days=2), time(0), OSLO)
    if not cache.add(once, 1, timeout=int((expires - now).total_seconds())):
        raise ServiceError("conflict", _("You have already answered. Thank you!"))
    try:
        with transaction.atomic():
            stats_record_about(conversation, answers)
    except Exception:
        cache.delete(once)  # nothing was counted: the youth may try again
        raise


def feedback_give(*, youth: Youth, conversation_id, scores: dict, text: str = "") -> Feedback:
    """The youth's answers after a chat staff asked feedback for: each statement 0–5 or
    skipped, optional text (encrypted; the form warns not to write names). Once only."""
    unknown = set(scores) - set(Feedback.STATEMENTS)
    if unknown:
        raise ServiceError(
            "bad_feedback", _("Unknown statements {names}.").format(names=sorted(unknown))
        )
    for value in scores.values():
        if value is not None and (type(value) is not int or not 0 <= value <= 5):
            raise ServiceError("bad_feedback", _("Each answer is a whole number from 0 to 5."))
    text = (text or "").strip()
    if len(text) > FEEDBACK_TEXT_MAX:
        raise ServiceError(
            "too_long", _("Feedback can be at most {n} characters.").format(n=FEEDBACK_TEXT_MAX)
        )
    if not text and all(scores.get(name) is None for name in Feedback.STATEMENTS):
        raise ServiceError("empty", _("The feedback is empty."))
    with transaction.atomic():
        conversation = selectors.conversation_for(
            Actor.for_youth(youth), conversation_id, lock=True
        )
        if conversation.state != Conversation.State.ENDED or not conversation.feedback_requested:
            raise ServiceError("not_allowed", _("Feedback is asked for after a chat ends."))
        if Feedback.objects.filter(conversation=conversation).exists():
            raise ServiceError("conflict", _("You have already given feedback. Thank you!"))
        body = None
        if text:
            key = selectors.data_key(conversation.id)
            if key is None:  # retention has deleted the conversation's content
                raise ServiceError("closed", _("This conversation's content has been deleted."))
            body = crypto.seal_text(key, text, aad=f"feedback:{conversation.id}")
        feedback = Feedback.objects.create(
            conversation=conversation,
            text=body,
            **{name: scores.get(name) for name in Feedback.STATEMENTS},
        )
        stats_record_feedback(feedback, conversation)
        return feedback


def conversation_destroy_content(*, conversation: Conversation, now=None) -> bool:
    """Make every message, note and feedback text of the conversation unreadable, for good, by
    deleting its data key. True if this call destroyed it (False: it was gone already)."""
    return bool(
        ConversationKey.objects.filter(conversation=conversation, wrapped__isnull=False).update(
            wrapped=None, destroyed_at=now or timezone.now()
        )
    )


# ---------------------------------------------------------------------------------------------
# Abuse: a per-identity message limit, and staff blocking an anonymous identity for a while


def _check_youth_message_rate(youth: Youth) -> None:
    """At most YOUTHHUB_MESSAGES_PER_MINUTE new messages a minute per anonymous identity, over
    all its sockets, tabs and workers (a counter in the cache: Redis in production). Keyed by
    the identity's random id, never by anything about the device. While the cache cannot be
    reached (Redis restarting) messages are allowed: a flood limit must not stop a chat."""
    if not ratelimit.allow(
        f"youth-messages:{youth.id}",
        limit=settings.YOUTHHUB_MESSAGES_PER_MINUTE,
        window_seconds=60,
        fail_open=True,
    ):
        raise ServiceError(
            "rate_limited",
            _(
                "You are sending a lot of messages very fast. Take a short break – in a minute "
                "you can write again. Nothing is lost: what was sent is still there."
            ),
        )


def blocked_message() -> str:
    return _(
        "You can't chat with us right now. If you need to talk to someone now, call the "
        "helpline for children and young people on 116 111, or the Mental Health helpline on "
        "116 123 (day and night). If a life is in danger, call 113."
    )


def youth_check_not_blocked(youth: Youth, now=None) -> None:
    """`blocked` while a block on this identity is in force."""
    if selectors.active_block(youth, now) is not None:
        raise ServiceError("blocked", blocked_message())


def _block_recipients(block: Block) -> list[int]:
    """Who hears of a block: whoever placed it, and the supervisors."""
    return sorted({*([block.by_id] if block.by_id else []), *selectors.supervisor_ids()})


def _publish_block(block: Block, *, active: bool) -> None:
    def build():
        card = selectors.block_card(block, active=active)
        frame = {"type": "block.update", "block": card}
        return [(events.staff_user_group(uid), frame) for uid in _block_recipients(block)]

    events.publish_many_on_commit(build)


def youth_block(*, user, conversation_id, duration: str, reason: str = "") -> tuple[Block, list]:
    """The staff member assigned to a conversation blocks the anonymous identity behind it for
    `duration` (a key of BLOCK_DURATIONS), with an optional reason key (BLOCK_REASONS).

    The conversation may be open, or ended within BLOCK_AFTER_END. The youth's open
    conversation (if any) ends as if staff had ended it, every socket of the youth gets
    `blocked`, and from then until the block ends the youth can neither request nor write.
    Audited (`block.add`). Returns (block, [conversations this ended])."""
    if selectors.staff_profile(user) is None:
        raise ServiceError("not_allowed", _("Only staff can block."))
    if not isinstance(duration, str) or duration not in BLOCK_DURATIONS:
        raise ServiceError(
            "bad_duration",
            _("Choose how long: {choices}.").format(choices=", ".join(BLOCK_DURATIONS)),
        )
    reason = reason or ""
    if reason and reason not in BLOCK_REASONS:
        raise ServiceError(
            "bad_block_reason",
            _("Choose a reason from the list ({choices}), or none.").format(
                choices=", ".join(BLOCK_REASONS)
            ),
        )
    now = timezone.now()
    ended = []
    with transaction.atomic():
        conversation = selectors.conversation_for(Actor.for_staff(user), conversation_id, lock=True)
        if not conversation.is_open and (
            conversation.ended_at is None or now - conversation.ended_at > BLOCK_AFTER_END
        ):
            raise ServiceError(
                "closed", _("This conversation ended too long ago to block from it.")
            )
        # The identity's row is the lock every request and every block takes first.
        youth = Youth.objects.select_for_update().get(pk=conversation.youth_id)
        Block.objects.filter(youth=youth, until__lte=now).delete()  # an old, expired one
        current = Block.objects.filter(youth=youth).first()
        if current is not None:
            raise ServiceError(
                "conflict", _("This youth is already blocked. Lift that block first to change it.")
            )
        block = Block.objects.create(
            youth=youth,
            conversation=conversation,
            by=user,
            reason=reason,
            until=now + timedelta(hours=BLOCK_DURATIONS[duration]),
        )
        audit_record(
            "block.add",
            actor=user,
            conversation_id=conversation.id,
            block=block.id,
            duration=duration,
            reason=reason or None,
        )
        still_open = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("youth")
            .filter(youth=youth, state__in=Conversation.OPEN_STATES)
        )
        for open_conversation in still_open:
            by = "staff" if open_conversation.assigned_staff_id == user.id else "system"
            _close_open(open_conversation, by=by, user=user)
            ended.append(open_conversation)
        events.publish_on_commit(events.youth_group(youth.id), selectors.blocked_frame(block))
        _publish_block(block, active=True)
    return block, ended


def youth_unblock(*, user, block_id) -> dict:
    """Lift a block before it ends: whoever placed it, or a supervisor. The block is deleted
    (the audit log keeps `block.lift`); the youth's sockets get `unblocked`. Returns the card."""
    profile = selectors.staff_profile(user)
    if profile is None:
        raise ServiceError("not_allowed", _("Only staff can lift a block."))
    block_id = selectors.row_uuid(block_id, _("There is no such block."))
    now = timezone.now()
    with transaction.atomic():
        block = (
            Block.objects.select_for_update(of=("self",))
            .select_related("youth", "by__staff_profile")
            .filter(id=block_id)
            .first()
        )
        if block is None or not block.active(now):
            raise ServiceError("not_found", _("There is no such block (it may have ended)."))
        if block.by_id != user.id and not profile.is_supervisor:
            raise ServiceError(
                "not_allowed", _("Only the person who blocked, or a supervisor, can lift it.")
            )
        card = selectors.block_card(block, active=False)
        audit_record(
            "block.lift", actor=user, conversation_id=block.conversation_id, block=block.id
        )
        recipients = _block_recipients(block)
        youth_id = block.youth_id
        block.delete()
        events.publish_on_commit(events.youth_group(youth_id), {"type": "unblocked"})
        frame = {"type": "block.update", "block": card}
        for uid in sorted({*recipients, user.id}):
            events.publish_on_commit(events.staff_user_group(uid), frame)
    return card
