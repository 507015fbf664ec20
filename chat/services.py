"""Every state change of the chat, one function per domain action.

Each action validates, writes inside one transaction, and publishes its events only after
the commit (chat.events). A ServiceError means nothing was written.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dropin.broadcast import queue_changed
from youthhub import crypto, ratelimit

from . import events, selectors
from .actors import Actor
from .aliases import random_alias
from .errors import ServiceError
from .models import Conversation, ConversationKey, Message, Youth

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
            "rate_limited", "Many people are starting a chat right now. Try again in a minute."
        )
    token = secrets.token_urlsafe(32)
    youth = Youth.objects.create(
        alias=random_alias(), token_hash=hash_token(token), last_seen_at=timezone.now()
    )
    return youth, token


def youth_authenticate(token) -> Youth:
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        raise ServiceError("unauthorized", "This chat session is not valid. Start a new one.")
    youth = Youth.objects.filter(token_hash=hash_token(token)).first()
    if youth is None:
        raise ServiceError("unauthorized", "This chat session is not valid. Start a new one.")
    now = timezone.now()
    if now - youth.last_seen_at > LAST_SEEN_GRANULARITY:
        Youth.objects.filter(pk=youth.pk).update(last_seen_at=now)
    return youth


def youth_return_code_issue(*, youth: Youth) -> str:
    """A new return code for this youth (the old one stops working). Shown once."""
    secret = "".join(secrets.choice(RETURN_CODE_ALPHABET) for _ in range(RETURN_CODE_SECRET_LEN))
    hashed = _hash_return_secret(secret)
    for _ in range(10):
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
    raise ServiceError("unavailable", "Could not make a code right now. Try again.")


def youth_resume(*, return_code: str) -> tuple[Youth, str]:
    """Resume an identity on this device with its return code; issues a fresh token.

    The previous token stops working (a lost or shared phone loses access). Guessing is
    limited per code (lockout after RETURN_CODE_MAX_FAILURES) and in total per minute.
    """
    if not ratelimit.allow(
        "youth-resume", limit=settings.YOUTHHUB_RESUMES_PER_MINUTE, window_seconds=60
    ):
        raise ServiceError("rate_limited", "Too many tries right now. Wait a minute and try again.")
    code = normalise_return_code(return_code)
    wrong = ServiceError("bad_code", "That code does not match. Check it and try again.")
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
        raise ServiceError("rate_limited", "Too many wrong tries with this code. Wait 15 minutes.")
    if outcome == "wrong":
        raise wrong
    return youth, token


# ---------------------------------------------------------------------------------------------
# Conversations


def conversation_key_create(conversation: Conversation) -> None:
    """Give a new conversation its own data key, wrapped by the current master key."""
    key_id, wrapped = crypto.wrap_data_key(crypto.new_data_key(), context=str(conversation.id))
    ConversationKey.objects.create(conversation=conversation, master_key_id=key_id, wrapped=wrapped)


def message_send(*, actor: Actor, conversation_id, client_id: str, text: str) -> tuple[dict, bool]:
    """Store a message with the next seq and publish it. Returns (message frame, created).

    Idempotent on (conversation, sender, client_id): a resend returns the stored message.
    """
    if not text.strip():
        raise ServiceError("empty", "The message is empty.")
    if len(text) > settings.YOUTHHUB_MAX_MESSAGE_CHARS:
        raise ServiceError(
            "too_long",
            f"A message can be at most {settings.YOUTHHUB_MAX_MESSAGE_CHARS} characters.",
        )
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
        if not conversation.is_open:
            raise ServiceError("closed", "This conversation has ended.")
        seq = conversation.next_seq
        conversation.next_seq = seq + 1
        conversation.save(update_fields=["next_seq"])
        key = selectors.data_key(conversation.id)
        body = crypto.seal_text(key, text, aad=selectors.message_aad(conversation.id, seq))
        message = Message.objects.create(
            conversation=conversation,
            seq=seq,
            sender=actor.kind,
            staff=actor.user if actor.kind == "staff" else None,
            body=body,
            client_id=client_id,
        )
        if actor.kind == "youth":
            name = actor.youth.alias
        else:
            name = actor.user.staff_profile.display_name
        frame = selectors.message_frame(message, text, sender_name=name)
        events.publish_on_commit(events.conversation_group(conversation.id), frame)
    return frame, True


def conversation_typing(*, actor: Actor, conversation_id, active: bool) -> None:
    """Ephemeral: nothing is stored; the other side sees a typing indicator."""
    conversation = selectors.conversation_for(actor, conversation_id)
    if not conversation.is_open:
        raise ServiceError("closed", "This conversation has ended.")
    events.publish_on_commit(
        events.conversation_group(conversation.id),
        {
            "type": "typing",
            "conversation_id": str(conversation.id),
            "who": actor.kind,
            "active": bool(active),
        },
    )


def conversation_mark_read(*, actor: Actor, conversation_id, seq: int) -> int:
    """Record that the actor has read up to `seq`; returns the (monotonic) read mark."""
    field = "youth_read_seq" if actor.kind == "youth" else "staff_read_seq"
    with transaction.atomic():
        conversation = selectors.conversation_for(actor, conversation_id, lock=True)
        if seq < 0 or seq > conversation.latest_seq:
            raise ServiceError("bad_seq", f"seq must be between 0 and {conversation.latest_seq}.")
        if seq <= getattr(conversation, field):
            return getattr(conversation, field)
        setattr(conversation, field, seq)
        conversation.save(update_fields=[field])
        events.publish_on_commit(
            events.conversation_group(conversation.id),
            {
                "type": "read",
                "conversation_id": str(conversation.id),
                "reader": actor.kind,
                "seq": seq,
            },
        )
    return seq


def conversation_end(*, actor: Actor, conversation_id) -> Conversation:
    """End an active chat, or (youth) leave the queue: that is 'abandoned'."""
    with transaction.atomic():
        conversation = selectors.conversation_for(actor, conversation_id, lock=True)
        if not conversation.is_open:
            raise ServiceError("closed", "This conversation has already ended.")
        was_queued = conversation.state == Conversation.State.QUEUED
        conversation.state = (
            Conversation.State.ABANDONED if was_queued else Conversation.State.ENDED
        )
        conversation.ended_at = timezone.now()
        conversation.save(update_fields=["state", "ended_at"])
        events.publish_on_commit(
            events.conversation_group(conversation.id),
            selectors.ended_frame(conversation, by=actor.kind),
        )
        queue_changed()  # a place in the queue or a staff member's capacity freed up
    return conversation


def conversation_destroy_content(*, conversation: Conversation) -> None:
    """Make every message of the conversation unreadable, for good, by deleting its data key."""
    ConversationKey.objects.filter(conversation=conversation).update(
        wrapped=None, destroyed_at=timezone.now()
    )
