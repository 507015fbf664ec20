"""Reads: the directory, handovers as each kind of person may see them, consultations.

The access rules live here (docs/handover.md):
- a partner sees a handover only if it is addressed to their service, the youth's consent is
  given, not withdrawn, not expired, for this service and named person, and the handover is
  sent, accepted or met; every read of the summary by a partner is audited;
- staff see a handover they created, one on a conversation assigned to them, or (supervisors)
  any; a read by anyone but the sender is audited;
- the youth sees their own handovers once proposed: exactly the sections that will be / were
  shared (the proposed scope minus what they excepted) and the status in plain words.

Nothing here changes domain state; the audited reads append to the audit log only.
"""

import hashlib
import json
import uuid
from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chat.errors import ServiceError
from chat.models import TOPICS
from chat.selectors import row_uuid, staff_profile
from youthhub import crypto
from youthhub.audit.models import AuditEvent
from youthhub.audit.services import audit_record
from youthhub.staff.models import StaffProfile

from .models import (
    SUMMARY_SECTIONS,
    AgeBand,
    Consent,
    Consultation,
    Handover,
    HandoverKey,
    PartnerProfile,
    Reach,
    Service,
)

# Topics a youth may except from a consent (the list they already know from the chat start).
EXCEPTABLE_TOPICS = tuple(key for key in TOPICS if key != "other")

FRAME_TYPES = ("consent.request", "handover.update", "consultation.update")


def frame(kind: str, **fields) -> dict:
    """A server → client frame of this app:

    - `consent.request {handover}` to the youth: a handover was proposed (youth_view);
    - `handover.update {handover}` to the youth (youth_view), to staff (staff_card) and to
      the service's partners (partner_card, or `{id, state, visible: false, reason}`);
    - `consultation.update {consultation}` to the service's partners and the asker.
    """
    if kind not in FRAME_TYPES:
        raise ValueError(f"unknown frame type {kind!r}")
    return {"type": kind, **fields}


# The fixed wording of the consent card on the youth page (frontend/views.py hands it to
# consent.js, which renders nothing of its own). It is part of every consent's text version:
# edit a text here or its translation, and an answer given to the old wording is `stale`.
CONSENT_WORDING = {
    "question": gettext_lazy(
        "Can we send this to {service}? They only get what is below, and only for {days} days. "
        "You can take back your yes at any time."
    ),
    "your_answer": gettext_lazy("Your answer"),
    "answers": {
        "agree": gettext_lazy("Yes"),
        "agree_except": gettext_lazy("Yes, but leave some things out"),
        "change": gettext_lazy("I want something changed first"),
        "no": gettext_lazy("No"),
    },
    "leave_out": gettext_lazy("What should they not get?"),
    "age": gettext_lazy("How old are you?"),
    "reason": gettext_lazy("Do you want to say why? (you don't have to)"),
    "contact": gettext_lazy("How can they reach you? (phone or e-mail; only they will see it)"),
    "send": gettext_lazy("Send my answer"),
    "would_share": gettext_lazy("This is what they would get, word for word:"),
    "shared": gettext_lazy("This is what they got:"),
    "not_shared": gettext_lazy("Not shared: {topics}"),
    "your_code": gettext_lazy("Your code for them: {code}. Write it down – it is shown only now."),
    "withdraw": gettext_lazy("Take back my yes"),
    "withdraw_help": gettext_lazy("If you take back your yes, they can no longer read it."),
}


def consent_wording() -> dict:
    """CONSENT_WORDING in the active language (what the youth page shows)."""

    def resolve(value):
        return {k: resolve(v) for k, v in value.items()} if isinstance(value, dict) else str(value)

    return resolve(CONSENT_WORDING)


def asked_version(view: dict) -> str:
    """The version of the consent question exactly as the youth sees it now, in the active
    language: the page's wording (consent_wording) and everything of the youth view it renders
    (service, person, reach, status, every section's label and text, the choices and notes of
    `ask`). The page sends it back with the answer, and a yes counts only for exactly this
    text (services.consent_answer refuses any other: `stale`)."""
    shown = {k: v for k, v in view.items() if k != "ask"}
    shown["ask"] = {k: v for k, v in (view.get("ask") or {}).items() if k != "text_version"}
    return consent_text_version(
        json.dumps(
            {
                "language": translation.get_language(),
                "wording": consent_wording(),
                "view": shown,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
    )


def consent_text_version(rendered_text: str) -> str:
    """A version id for the consent wording a youth was shown: 16 hex digits of its SHA-256."""
    return hashlib.sha256(rendered_text.encode("utf-8")).hexdigest()[:16]


# -- small helpers -----------------------------------------------------------------------------


def handover_uuid(value) -> uuid.UUID:
    return row_uuid(value, _("There is no such handover."))


def partner_profile(user) -> PartnerProfile | None:
    """The user's partner profile, or None: a user without one is not a partner."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return PartnerProfile.objects.select_related("service").filter(user=user).first()


# What reading a handover needs in one query (cards, views, frames).
RELATIONS = (
    "service",
    "youth",
    "consent",
    "conversation",
    "created_by__staff_profile",
    "answered_by__partner_profile",
    "partner_joined_by__partner_profile",
    "alternative_service",
)


def handover_with_relations(handover_id, *, lock: bool = False) -> Handover:
    qs = Handover.objects.select_related(*RELATIONS)
    if lock:
        qs = qs.select_for_update(of=("self",))
    handover = qs.filter(id=handover_uuid(handover_id)).first()
    if handover is None:
        raise ServiceError("not_found", _("There is no such handover."))
    return handover


def data_key(handover_id) -> bytes | None:
    """The handover's data key, or None once it was destroyed (withdrawal, expiry, closing)."""
    key = HandoverKey.objects.filter(handover_id=handover_id).first()
    return key.unwrap(f"handover:{handover_id}") if key else None


def field_aad(handover_id, field: str) -> str:
    return f"handover:{handover_id}:{field}"


def open_field(key: bytes | None, handover_id, field: str, blob) -> str | None:
    if key is None or blob is None:
        return None
    return crypto.open_text(key, bytes(blob), aad=field_aad(handover_id, field))


def summary_of(handover: Handover, key: bytes | None) -> dict | None:
    text = open_field(key, handover.id, "summary", handover.summary)
    return None if text is None else json.loads(text)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def when_text(value: datetime) -> str:
    """ "tirsdag 3. mars 2026 kl. 14:00" / "Tuesday March 3, 2026 at 14:00"."""
    local = timezone.localtime(value)
    return _("{weekday} {date} at {time}").format(
        weekday=date_format(local, "l"),
        date=date_format(local, "DATE_FORMAT"),
        time=time_format(local, "H:i"),
    )


def date_text(value: datetime) -> str:
    return date_format(timezone.localtime(value), "DATE_FORMAT")


# -- consent ---------------------------------------------------------------------------------


def consent_days() -> int:
    from django.conf import settings

    return int(getattr(settings, "YOUTHHUB_CONSENT_DAYS", 30))


def shared_sections(handover: Handover, consent: Consent | None = None) -> list[str]:
    """Section keys the partner gets: the scope the youth answered to minus what they
    excepted; before an answer, the scope proposed."""
    if consent is None:
        return [key for key in SUMMARY_SECTIONS if key in handover.scope]
    return [
        key for key in SUMMARY_SECTIONS if key in consent.scope and key not in consent.exceptions
    ]


def excepted_topics(consent: Consent | None) -> list[str]:
    if consent is None:
        return []
    return [key for key in consent.exceptions if key in TOPICS]


def consent_problem(handover: Handover, now: datetime) -> str | None:
    """Why the handover's consent does not allow sharing now (a short code), or None."""
    consent = handover.consent
    if consent is None or not consent.agreed:
        return "no_consent"
    if consent.withdrawn_at is not None or handover.state == Handover.State.WITHDRAWN:
        return "withdrawn"
    if handover.state == Handover.State.EXPIRED or consent.expires_at <= now:
        return "expired"
    # A consent is for one service and one named person: another needs a new consent.
    if consent.service_id != handover.service_id or consent.named_person != handover.named_person:
        return "no_consent"
    return None


def closed_reason(handover: Handover, now: datetime) -> str:
    """Why a partner may no longer see a handover, as its partner page says it: `consent`
    (the youth withdrew), `expired` (the consent ran out, whatever the handover's state),
    `declined` (the service said no) or `closed`."""
    problem = consent_problem(handover, now)
    if problem == "withdrawn":
        return "consent"
    if problem == "expired":
        return "expired"
    if handover.state == Handover.State.DECLINED:
        return "declined"
    return "closed"


def _partner_refusal(code: str) -> ServiceError:
    messages = {
        "no_consent": _("The youth has not consented to sharing this with you."),
        "withdrawn": _("The youth has withdrawn their consent."),
        "expired": _("The youth's consent has expired."),
        "state": _("This handover is not open to you."),
        "deleted": _("This handover's content has been deleted."),
    }
    return ServiceError("not_allowed", messages[code])


def partner_block(handover: Handover, service_id: int | None, now: datetime):
    """None if a partner of service `service_id` may read the handover now, else the
    ServiceError to raise."""
    if service_id is None or handover.service_id != service_id:
        return ServiceError("not_found", _("There is no such handover."))
    problem = consent_problem(handover, now)
    if problem is not None:
        return _partner_refusal(problem)
    if handover.state not in Handover.PARTNER_STATES:
        return _partner_refusal("state")
    return None


# -- the directory ---------------------------------------------------------------------------


def service_card(service: Service) -> dict:
    """A directory entry as staff see it."""
    return {
        "id": service.id,
        "slug": service.slug,
        "name": service.name,
        "kind": service.kind,
        "kind_label": str(service.get_kind_display()),
        "offers": service.offers,
        "youth_description": service.youth_description,
        "age_min": service.age_min,
        "age_max": service.age_max,
        "access": service.access,
        "access_label": str(service.get_access_display()),
        "referral_from": service.referral_from or None,
        "takes_digital_handovers": service.takes_digital_handovers,
        "reply_days": service.reply_days,
        "phone": service.phone or None,
        "area": service.area or None,
    }


def service_youth_card(service: Service) -> dict:
    """A directory entry as a youth sees it: plain words, how to get there."""
    return {
        "id": service.id,
        "slug": service.slug,
        "name": service.name,
        "description": service.youth_description,
        "access": service.access,
        "access_label": str(service.get_access_display()),
        "phone": service.phone or None,
    }


def service_directory(*, age: int | None = None, digital_only: bool = False) -> list[dict]:
    """The active services (for an age, if given), as staff see them."""
    qs = Service.objects.filter(active=True)
    if age is not None:
        qs = qs.filter(age_min__lte=age).filter(Q(age_max__isnull=True) | Q(age_max__gte=age))
    if digital_only:
        qs = qs.filter(takes_digital_handovers=True)
    return [service_card(service) for service in qs]


# -- cards -----------------------------------------------------------------------------------


def _sender_card(handover: Handover) -> dict:
    profile = getattr(handover.created_by, "staff_profile", None)
    return {
        "id": handover.created_by_id,
        "display_name": profile.display_name if profile else handover.created_by.get_username(),
        "role": profile.role if profile else None,
    }


def _answer_card(handover: Handover) -> dict | None:
    if handover.answered_at is None:
        return None
    by = getattr(handover.answered_by, "partner_profile", None)
    return {
        "by": by.display_name if by else None,
        "at": handover.answered_at.isoformat(),
        "first_meeting_at": _iso(handover.first_meeting_at),
        "where": handover.meeting_where or None,
        "who": handover.meeting_who or None,
        "alternative_service": (
            service_youth_card(handover.alternative_service)
            if handover.alternative_service_id
            else None
        ),
    }


def _chat_card(handover: Handover) -> dict | None:
    """A warm handover's live chat: whether (and who of) the service joined, and whether the
    staff member passed the chat to them (services.handover_chat_pass)."""
    if handover.reach != Reach.WARM:
        return None
    partner = getattr(handover.partner_joined_by, "partner_profile", None)
    return {
        "joined": handover.partner_joined_seq is not None,
        "partner": partner.display_name if partner else None,
        "passed_at": _iso(handover.chat_passed_at),
    }


def is_overdue(handover: Handover, now: datetime) -> bool:
    return (
        handover.state == Handover.State.SENT
        and handover.answered_at is None
        and handover.reply_expected_by is not None
        and handover.reply_expected_by < now
    )


def _consent_card(consent: Consent | None) -> dict | None:
    if consent is None:
        return None
    return {
        "id": str(consent.id),
        "answer": consent.answer,
        "age_band": consent.age_band or None,
        "named_person": consent.named_person or None,
        "scope": list(consent.scope),
        "exceptions": list(consent.exceptions),
        "text_version": consent.text_version,
        "given_at": consent.given_at.isoformat(),
        "expires_at": _iso(consent.expires_at),
        "withdrawn_at": _iso(consent.withdrawn_at),
    }


# What staff are told after the youth's answer (docs/handover.md): keys of a card's
# `guidance`, shown in the staff member's own language (the dashboard's strings).
STAFF_GUIDANCE = {
    "under_16": gettext_lazy(
        "The youth says they are under 16. Parents or guardians normally consent to health "
        "care (pasient- og brukerrettighetsloven § 4-3): talk with the youth about involving "
        "a parent, and listen to what they want. The receiving service is told the age band. "
        "Your duty to report serious neglect to child welfare still applies."
    ),
    "no": gettext_lazy(
        "The youth said no. You may ask gently why, and say what the service could offer; "
        "respect the answer and never push. Nothing was sent."
    ),
    "change": gettext_lazy(
        "The youth wants changes. Ask what they want changed, edit, and propose again."
    ),
}


def latest_answer(handover: Handover) -> Consent | None:
    """The youth's last answer to the handover (a yes, a no or a request for changes)."""
    return handover.consents.order_by("-given_at").first()


def staff_guidance(handover: Handover, latest: Consent | None) -> list[str]:
    """Keys of STAFF_GUIDANCE for the handover as it stands: after a no or a request for
    changes, ask why and never push; after a yes from someone under 16, involving parents."""
    keys = []
    if latest is not None:
        if handover.state == Handover.State.REFUSED and latest.answer == Consent.Answer.NO:
            keys.append("no")
        if (
            handover.state == Handover.State.CHANGES_REQUESTED
            and latest.answer == Consent.Answer.CHANGE
        ):
            keys.append("change")
    consent = handover.consent
    if (
        consent is not None
        and consent.age_band == AgeBand.UNDER_16
        and handover.state in ("sent", "accepted", "declined", "met")
    ):
        keys.append("under_16")
    return keys


def staff_card(handover: Handover, *, now: datetime | None = None, texts: bool = False) -> dict:
    """A handover as staff see it in lists and updates: no summary text. `texts`: for the
    staff responsible for it (its sender and the conversation's staff member now), also the
    youth's reason for a no / change and the service's decline reason and alternative offer
    (decrypted; None once the content is deleted)."""
    now = now or timezone.now()
    latest = latest_answer(handover)
    key = data_key(handover.id) if texts else None
    youth_answer = None
    if latest is not None:
        youth_answer = {
            "answer": latest.answer,
            "at": latest.given_at.isoformat(),
            "age_band": latest.age_band or None,
            "reason": open_field(key, handover.id, f"reason:{latest.id}", latest.reason),
        }
    decline = None
    if handover.state == Handover.State.DECLINED or handover.decline_reason is not None:
        decline = {
            "reason": open_field(key, handover.id, "decline_reason", handover.decline_reason),
            "alternative": open_field(key, handover.id, "alternative", handover.alternative),
        }
    return {
        "id": str(handover.id),
        "conversation_id": str(handover.conversation_id) if handover.conversation_id else None,
        "alias": handover.youth.alias,
        "service": {
            "id": handover.service_id,
            "slug": handover.service.slug,
            "name": handover.service.name,
        },
        "named_person": handover.named_person or None,
        "reach": handover.reach,
        "state": handover.state,
        "sender": _sender_card(handover),
        "created_at": handover.created_at.isoformat(),
        "proposed_at": _iso(handover.proposed_at),
        "sent_at": _iso(handover.sent_at),
        "reply_expected_by": _iso(handover.reply_expected_by),
        "overdue": is_overdue(handover, now),
        "overdue_flagged_at": _iso(handover.overdue_flagged_at),
        "answer": _answer_card(handover),
        "met_at": _iso(handover.met_at),
        "withdrawn_at": _iso(handover.withdrawn_at),
        "expired_at": _iso(handover.expired_at),
        "closed_at": _iso(handover.closed_at),
        "consent": _consent_card(handover.consent),
        "youth_answer": youth_answer,
        "guidance": staff_guidance(handover, latest),
        "decline": decline,
        "chat": _chat_card(handover),
    }


def partner_card(handover: Handover, *, now: datetime | None = None) -> dict:
    """A handover in a partner's inbox (no summary, no contact details), or, when they may
    no longer see it, only `{id, state, visible: false, reason}` so their screen drops it at
    once and says why (`closed_reason`)."""
    now = now or timezone.now()
    if partner_block(handover, handover.service_id, now) is not None:
        return {
            "id": str(handover.id),
            "state": handover.state,
            "visible": False,
            "reason": closed_reason(handover, now),
        }
    consent = handover.consent
    return {
        "id": str(handover.id),
        "visible": True,
        "state": handover.state,
        "service_id": handover.service_id,
        "reach": handover.reach,
        "named_person": handover.named_person or None,
        "age_band": consent.age_band,
        "sender": _sender_card(handover),
        "sent_at": _iso(handover.sent_at),
        "reply_expected_by": _iso(handover.reply_expected_by),
        "overdue": is_overdue(handover, now),
        "answer": _answer_card(handover),
        "met_at": _iso(handover.met_at),
        "consent_expires_at": _iso(consent.expires_at),
    }


# -- the youth's view ------------------------------------------------------------------------


def youth_may_see(handover: Handover) -> bool:
    """A youth never sees a draft that was not yet proposed to them."""
    return handover.state != Handover.State.DRAFT or handover.proposed_at is not None


def youth_status(handover: Handover) -> str:
    """The state in plain words for the youth."""
    service = handover.service.name
    staff = _sender_card(handover)["display_name"]
    state = handover.State
    if handover.state == state.DRAFT:
        return _(
            "{staff} is making changes. You will see it again before anything is sent."
        ).format(staff=staff)
    if handover.state == state.PROPOSED:
        return _("{staff} suggests sending this to {service}. It is your choice.").format(
            staff=staff, service=service
        )
    if handover.state == state.CHANGES_REQUESTED:
        return _("You asked for changes. {staff} is looking at it. Nothing has been sent.").format(
            staff=staff
        )
    if handover.state == state.REFUSED:
        return _("You said no. Nothing was sent to {service}.").format(service=service)
    if handover.state == state.SENT:
        text = _("Sent to {service}. They usually answer by {date}.").format(
            service=service, date=date_text(handover.reply_expected_by)
        )
        if handover.reach == Reach.CODE:
            text += " " + _("Show your code at {service}.").format(service=service)
        elif handover.reach == Reach.WARM:
            text += " " + _("Someone from {service} may join this chat.").format(service=service)
        return text
    if handover.state in (state.ACCEPTED, state.MET):
        if handover.state == state.MET:
            return _("You have met {service}.").format(service=service)
        text = _("{service} said yes: first meeting {when}.").format(
            service=service, when=when_text(handover.first_meeting_at)
        )
        if handover.meeting_where:
            text += " " + _("Place: {where}.").format(where=handover.meeting_where)
        if handover.meeting_who:
            text += " " + _("You will meet {who}.").format(who=handover.meeting_who)
        return text
    if handover.state == state.DECLINED:
        text = _("{service} cannot offer you a place right now. They suggest something else.")
        text = text.format(service=service)
        if handover.alternative_service_id:
            text += " " + _("For example {service}.").format(
                service=handover.alternative_service.name
            )
        return text
    if handover.state == state.WITHDRAWN:
        return _("You took back your yes. {service} can no longer read what was shared.").format(
            service=service
        )
    if handover.state == state.EXPIRED:
        if handover.sent_at is None:
            return _("This suggestion ran out. Nothing was sent.")
        return _("Your yes has run out. {service} can no longer read what was shared.").format(
            service=service
        )
    return _("This is closed.")


def youth_view(handover: Handover, *, now: datetime | None = None) -> dict:
    """What the youth sees: the service, the status in plain words, and word for word the
    sections that will be (or were) shared, minus what they excepted."""
    now = now or timezone.now()
    consent = handover.consent
    key = data_key(handover.id)
    summary = summary_of(handover, key)
    keys = shared_sections(handover, consent)
    sections = None
    # A draft being changed shows no text: the youth sees it again when it is proposed.
    if summary is not None and handover.state != Handover.State.DRAFT:
        sections = [
            {"key": k, "label": str(SUMMARY_SECTIONS[k]), "text": summary.get(k, "")} for k in keys
        ]
    view = {
        "id": str(handover.id),
        "state": handover.state,
        "status": youth_status(handover),
        "service": service_youth_card(handover.service),
        "named_person": handover.named_person or None,
        "reach": handover.reach,
        "staff": _sender_card(handover)["display_name"],
        "sections": sections,
        "content_deleted": summary is None,
        "not_shared_topics": [
            {"key": k, "label": str(TOPICS[k])} for k in excepted_topics(consent)
        ],
        "contact": (
            open_field(key, handover.id, "contact", handover.contact)
            if handover.reach == Reach.CONTACT
            else None
        ),
        "first_meeting_at": _iso(handover.first_meeting_at),
        "alternative": (
            open_field(key, handover.id, "alternative", handover.alternative)
            if handover.state == Handover.State.DECLINED
            else None
        ),
        "consent": None,
    }
    if consent is not None:
        view["consent"] = {
            "given_at": consent.given_at.isoformat(),
            "expires_at": _iso(consent.expires_at),
            "withdrawn_at": _iso(consent.withdrawn_at),
            "can_withdraw": consent.withdrawn_at is None
            and consent.expires_at > now
            and handover.state in ("sent", "accepted", "declined", "met"),
        }
    if handover.state == Handover.State.PROPOSED:
        # What the consent question needs: the choices and what may be left out.
        view["ask"] = {
            "answers": ["agree", "agree_except", "change", "no"],
            "age_bands": [{"key": band.value, "label": str(band.label)} for band in AgeBand],
            "under_16_note": _(
                "If you are under 16, a parent or guardian usually has to agree to health "
                "help too. We talk with you about that first, and you are always heard."
            ),
            "may_except": {
                "sections": [{"key": k, "label": str(SUMMARY_SECTIONS[k])} for k in keys],
                "topics": [{"key": k, "label": str(TOPICS[k])} for k in EXCEPTABLE_TOPICS],
            },
            "asks_contact": handover.reach == Reach.CONTACT,
            "expires_days": consent_days(),
        }
        view["ask"]["text_version"] = asked_version(view)
    return view


def handover_for_youth(youth, handover_id, *, now: datetime | None = None) -> dict:
    """The youth's own handover (youth_view); `not_allowed` for anyone else's, `not_found`
    for a draft they have not been shown."""
    handover = handover_with_relations(handover_id)
    if handover.youth_id != youth.id:
        raise ServiceError("not_allowed", _("This is not your handover."))
    if not youth_may_see(handover):
        raise ServiceError("not_found", _("There is no such handover."))
    return youth_view(handover, now=now)


def youth_handovers(youth, *, now: datetime | None = None) -> list[dict]:
    rows = (
        Handover.objects.filter(youth=youth)
        .exclude(state=Handover.State.DRAFT, proposed_at__isnull=True)
        .select_related(
            "service", "youth", "consent", "created_by__staff_profile", "alternative_service"
        )
        .order_by("-created_at")
    )
    return [youth_view(row, now=now) for row in rows]


# -- staff -----------------------------------------------------------------------------------


def staff_relation(user, handover: Handover) -> str | None:
    """How a staff user relates to a handover: "sender", "conversation" (assigned to its
    conversation now), "supervisor", or None (may not see it)."""
    profile = staff_profile(user)
    if profile is None:
        return None
    if handover.created_by_id == user.id:
        return "sender"
    if handover.conversation_id and handover.conversation.assigned_staff_id == user.id:
        return "conversation"
    if profile.is_supervisor:
        return "supervisor"
    return None


def staff_to_tell(handover: Handover, *, also=()) -> list[int]:
    ids = [handover.created_by_id]
    if handover.conversation_id and handover.conversation.assigned_staff_id:
        ids.append(handover.conversation.assigned_staff_id)
    ids.extend(also)
    return list(dict.fromkeys(ids))


def supervisor_ids() -> list[int]:
    return list(
        StaffProfile.objects.filter(is_supervisor=True, user__is_active=True).values_list(
            "user_id", flat=True
        )
    )


def handover_for_staff(user, handover_id, *, now: datetime | None = None) -> dict:
    """The whole handover for its sender, the conversation's assigned staff member or a
    supervisor, drafts included: every section, what the youth chose to share, the partner's
    answer. A read by anyone but the sender is audited."""
    now = now or timezone.now()
    handover = handover_with_relations(handover_id)
    relation = staff_relation(user, handover)
    if relation is None:
        raise ServiceError("not_allowed", _("You cannot see this handover."))
    if relation != "sender":
        audit_record(
            "handover.read",
            actor=user,
            conversation_id=handover.conversation_id,
            handover=handover.id,
            reason=relation,
        )
    key = data_key(handover.id)
    summary = summary_of(handover, key)
    consent = handover.consent
    reason = None
    latest = handover.consents.order_by("-given_at").first()
    if latest is not None and latest.reason is not None:
        reason = open_field(key, handover.id, f"reason:{latest.id}", latest.reason)
    return {
        "handover": staff_card(handover, now=now),
        "summary": summary,
        "scope": list(handover.scope),
        "shared": shared_sections(handover, consent) if consent else None,
        "not_shared_topics": excepted_topics(consent),
        "content_deleted": summary is None,
        "youth_reason": reason,
        "decline_reason": open_field(key, handover.id, "decline_reason", handover.decline_reason),
        "alternative": open_field(key, handover.id, "alternative", handover.alternative),
    }


def responsible_staff(user, handover: Handover) -> bool:
    """Whether this staff user answers for the handover now (its sender, or the staff member
    its conversation is assigned to): they get its short texts on the card (staff_card). The
    same people its events go to with texts (staff_to_tell)."""
    return user.id in staff_to_tell(handover)


def staff_card_for(user, handover_id, *, now: datetime | None = None) -> dict:
    """The card of one handover for a staff user who just acted on it."""
    handover = handover_with_relations(handover_id)
    return staff_card(handover, now=now, texts=responsible_staff(user, handover))


def staff_handovers(user, *, now: datetime | None = None) -> list[dict]:
    """Handovers this staff member sent or whose conversation they have now (cards with their
    texts); for a supervisor also every overdue one (cards without texts): the flag is there
    after a reconnect too, not only as the live frame of handover_tick."""
    now = now or timezone.now()
    mine = Q(created_by=user) | Q(conversation__assigned_staff=user)
    profile = staff_profile(user)
    wanted = mine
    if profile is not None and profile.is_supervisor:
        wanted = mine | Q(
            state=Handover.State.SENT, answered_at__isnull=True, reply_expected_by__lt=now
        )
    rows = Handover.objects.filter(wanted).select_related(*RELATIONS).order_by("-created_at")
    return [staff_card(row, now=now, texts=responsible_staff(user, row)) for row in rows]


def handovers_overdue(
    now: datetime | None = None, *, unflagged_only: bool = False
) -> list[Handover]:
    """Sent handovers past their expected reply without an answer: the sender stays
    responsible and, with the supervisors, is told (services.handover_tick)."""
    now = now or timezone.now()
    qs = Handover.objects.filter(
        state=Handover.State.SENT, answered_at__isnull=True, reply_expected_by__lt=now
    )
    if unflagged_only:
        qs = qs.filter(overdue_flagged_at__isnull=True)
    return list(
        qs.select_related(
            "service", "youth", "consent", "conversation", "created_by__staff_profile"
        ).order_by("reply_expected_by")
    )


# -- partners --------------------------------------------------------------------------------


def partner_detail(handover: Handover, user, *, now: datetime, via: str) -> dict:
    key = data_key(handover.id)
    summary = summary_of(handover, key)
    if summary is None:
        raise _partner_refusal("deleted")
    audit_record(
        "handover.read",
        actor=user,
        actor_kind=AuditEvent.ActorKind.PARTNER,
        conversation_id=handover.conversation_id,
        handover=handover.id,
        service=handover.service_id,
        via=via,
    )
    consent = handover.consent
    contact = None
    if (
        handover.reach == Reach.CONTACT
        and handover.state in (Handover.State.ACCEPTED, Handover.State.MET)
        and handover.answered_by_id == user.id
    ):
        contact = open_field(key, handover.id, "contact", handover.contact)
    guidance = None
    if consent.age_band == AgeBand.UNDER_16:
        guidance = _(
            "The youth is under 16: parents or guardians normally have to consent to health "
            "care. Talk with the youth about this first; they have a right to be heard."
        )
    return {
        "handover": partner_card(handover, now=now),
        "sections": [
            {"key": k, "label": str(SUMMARY_SECTIONS[k]), "text": summary.get(k, "")}
            for k in shared_sections(handover, consent)
        ],
        "not_shared_topics": [
            {"key": k, "label": str(TOPICS[k])} for k in excepted_topics(consent)
        ],
        "contact": contact,
        "has_contact": handover.reach == Reach.CONTACT and handover.contact is not None,
        "guidance": guidance,
    }


def handover_for_partner(user, handover_id, *, now: datetime | None = None) -> dict:
    """The shared summary for a partner of the handover's service, if the consent allows it
    now; `not_found` for another service's handover, `not_allowed` before consent, after
    withdrawal or expiry. Every successful read is audited (actor_kind "partner").
    Contact details only for the partner who accepted."""
    now = now or timezone.now()
    handover, refusal = _as_partner(user, handover_id, now)
    if refusal is not None:
        raise refusal
    return partner_detail(handover, user, now=now, via="inbox")


def _as_partner(user, handover_id, now: datetime) -> tuple[Handover, ServiceError | None]:
    """The handover and why this partner may not read it now (None: they may)."""
    profile = partner_profile(user)
    if profile is None:
        raise ServiceError("not_allowed", _("Only partners of a service can read handovers."))
    handover = handover_with_relations(handover_id)
    return handover, partner_block(handover, profile.service_id, now)


def partner_handover_state(user, handover_id, *, now: datetime | None = None) -> dict:
    """Whether a partner of the handover's service may still read it, without its content
    (so not audited): an open detail page asks now and then, and replaces the summary with
    `message` once the youth withdrew or the consent ended. `not_found` for another
    service's handover, as everywhere."""
    handover, refusal = _as_partner(user, handover_id, now or timezone.now())
    if refusal is not None and refusal.code == "not_found":
        raise refusal
    return {
        "id": str(handover.id),
        "state": handover.state,
        "visible": refusal is None,
        "message": refusal.message if refusal is not None else None,
    }


def partner_inbox(user, *, now: datetime | None = None) -> list[dict]:
    """Handovers addressed to the partner's service that they may see now (cards, newest
    first). Withdrawn, expired and unconsented ones are not listed."""
    now = now or timezone.now()
    profile = partner_profile(user)
    if profile is None:
        raise ServiceError("not_allowed", _("Only partners of a service have an inbox."))
    rows = (
        Handover.objects.filter(
            service_id=profile.service_id,
            state__in=Handover.PARTNER_STATES,
            consent__withdrawn_at__isnull=True,
            consent__expires_at__gt=now,
        )
        .select_related(
            "service",
            "youth",
            "consent",
            "created_by__staff_profile",
            "answered_by__partner_profile",
            "alternative_service",
        )
        .order_by("-sent_at")
    )
    return [
        partner_card(row, now=now)
        for row in rows
        if partner_block(row, profile.service_id, now) is None
    ]


def partner_joinable(user, conversation_id, *, now: datetime | None = None) -> list[Handover]:
    """The warm handovers that let this partner into this conversation now (see below)."""
    now = now or timezone.now()
    profile = partner_profile(user)
    if profile is None:
        return []
    # Sent or accepted; once the chat was passed to the service, also after the first meeting
    # was marked held (the partner still leads the chat).
    states = Q(state__in=(Handover.State.SENT, Handover.State.ACCEPTED)) | Q(
        state=Handover.State.MET, conversation__led_by=F("id")
    )
    # Once passed to one service, it is that service's chat: another service's partner, who
    # came for an introduction with staff present, is no longer in it.
    led = Q(conversation__led_by__isnull=True) | Q(conversation__led_by=F("id"))
    rows = Handover.objects.filter(
        states,
        led,
        conversation_id=conversation_id,
        conversation__state="active",
        service_id=profile.service_id,
        reach=Reach.WARM,
    ).select_related("consent", "service")
    return [row for row in rows if partner_block(row, profile.service_id, now) is None]


def partner_visible_from(user, conversation_id) -> int:
    """The partner sees the chat from the seq at which they joined (never what came before)."""
    seqs = [h.partner_joined_seq for h in partner_joinable(user, conversation_id)]
    seqs = [s for s in seqs if s is not None]
    return min(seqs) if seqs else 2**31 - 1


def partner_may_join(user, conversation_id, *, now: datetime | None = None) -> bool:
    """Whether a partner may join this conversation for a live introduction: a warm handover
    to their service, sent or accepted (or met, once the chat was passed to them), with a
    valid consent, and the chat still active (led by its staff member or passed to them)."""
    return bool(partner_joinable(user, conversation_id, now=now))


# -- consultations ---------------------------------------------------------------------------


def consultation_key(consultation: Consultation) -> bytes | None:
    return consultation.unwrap(consultation.context())


def consultation_aad(consultation_id, field: str) -> str:
    return f"consultation:{consultation_id}:{field}"


def consultation_card(consultation: Consultation) -> dict:
    """Metadata only (what frames carry)."""
    return {
        "id": str(consultation.id),
        "service": {"id": consultation.service_id, "name": consultation.service.name},
        "asked_by": consultation.asked_by_id,
        "created_at": consultation.created_at.isoformat(),
        "answered": consultation.answered_at is not None,
        "answered_at": _iso(consultation.answered_at),
    }


def consultation_view(consultation: Consultation) -> dict:
    key = consultation_key(consultation)
    question = answer = None
    if key is not None:
        question = crypto.open_text(
            key, bytes(consultation.question), aad=consultation_aad(consultation.id, "question")
        )
        if consultation.answer is not None:
            answer = crypto.open_text(
                key, bytes(consultation.answer), aad=consultation_aad(consultation.id, "answer")
            )
    by = getattr(consultation.answered_by, "partner_profile", None)
    return {
        **consultation_card(consultation),
        "question": question,
        "answer": answer,
        "answered_by": by.display_name if by else None,
    }


def consultations_for_staff(user) -> list[dict]:
    rows = Consultation.objects.filter(asked_by=user).select_related(
        "service", "answered_by__partner_profile"
    )
    return [consultation_view(row) for row in rows]


def consultations_for_partner(user) -> list[dict]:
    profile = partner_profile(user)
    if profile is None:
        raise ServiceError("not_allowed", _("Only partners of a service can answer questions."))
    rows = Consultation.objects.filter(service_id=profile.service_id).select_related(
        "service", "answered_by__partner_profile"
    )
    return [consultation_view(row) for row in rows]
