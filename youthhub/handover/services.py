"""Every write of the handover app, one function per domain action (docs/handover.md).

Each action validates first, writes inside one transaction (the handover row locked), appends
its audit event(s) in the same transaction and publishes its frames only after the commit
(events.py). A ServiceError means nothing was written.

The state machine:

    draft ──propose──▶ proposed ──youth: agree / agree_except──▶ sent ──accept──▶ accepted ──▶ met
      ▲                  │  │                                     │  └──decline──▶ declined
      └──edit────────────┘  ├─youth: change──▶ changes_requested  ├──youth withdraws──▶ withdrawn
                            └─youth: no──────▶ refused            └──consent expires──▶ expired

Consenting and sending are one step: the youth's yes sends the handover to the service's
inbox at once (no gap in which the youth has said yes and nobody has been asked). The sender
stays responsible until the partner accepts; a sent handover past its expected reply is
flagged to the sender and the supervisors (handover_tick).
"""

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import events as chat_events
from chat import selectors as chat_selectors
from chat import services as chat_services
from chat.actors import Actor
from chat.errors import ServiceError
from chat.models import TOPICS, Conversation, Youth
from youthhub import crypto, ratelimit
from youthhub.audit.models import AuditEvent
from youthhub.audit.services import audit_record
from youthhub.staff.models import StaffProfile
from youthhub.stats.services import stats_record_handover

from . import selectors
from .events import publish_consultation, publish_handover
from .models import (
    REQUIRED_SECTIONS,
    SUMMARY_SECTIONS,
    Access,
    AgeBand,
    Consent,
    Consultation,
    Handover,
    HandoverKey,
    PartnerProfile,
    Reach,
    Service,
    ServiceKind,
)

SECTION_MAX_CHARS = 4000
NAMED_PERSON_MAX = 80
CONTACT_MAX = 500
REASON_MAX = 1000
MEETING_WHERE_MAX = 120
MEETING_WHO_MAX = 80
QUESTION_MAX = 4000
MEETING_HORIZON = timedelta(days=366)
PARTNER = AuditEvent.ActorKind.PARTNER
YOUTH = AuditEvent.ActorKind.YOUTH

# Handover codes: "K7QM-3XPA". The first half finds the row, the second is checked against
# a slow hash; guesses are limited per partner (CODE_TRIES_PER_MINUTE).
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_SELECTOR_LEN = 4
CODE_SECRET_LEN = 4
CODE_TRIES_PER_MINUTE = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


# -------------------------------------------------------------------------------------------
# The directory and partner accounts

# slug: (name, kind, age_min, age_max, access, referral_from, digital, reply_days, phone,
#        area, offers (staff), youth_description (bokmål, plain words))
DIRECTORY = {
    "bup-vestfold": (
        "BUP Vestfold",
        ServiceKind.BUP,
        0,
        17,
        Access.REFERRAL,
        "fastlege, kommunepsykolog eller barnevern",
        True,
        10,
        "",
        "Vestfold",
        "Psykisk helsevern for barn og unge under 18: utredning og behandling, poliklinisk. "
        "Henvisning fra fastlege, kommunepsykolog eller barnevern; vurderer henvisninger innen "
        "10 virkedager. Spesialister er på Ung Arena én dag i uka.",
        "For deg under 18 som har hatt det tungt lenge. Du kommer dit via fastlegen, "
        "kommunepsykologen eller barnevernet – vi hjelper deg med det.",
    ),
    "dps-vestfold": (
        "DPS Vestfold",
        ServiceKind.DPS,
        18,
        None,
        Access.REFERRAL,
        "fastlege",
        True,
        14,
        "",
        "Vestfold",
        "Distriktspsykiatrisk senter for voksne fra 18 år: poliklinikk, ambulant team, "
        "døgnplasser. Henvisning fra fastlege.",
        "For deg over 18 som trenger mer hjelp enn en prat. Fastlegen sender en henvisning.",
    ),
    "hfu-tonsberg": (
        "Helsestasjon for ungdom Tønsberg",
        ServiceKind.HELSESTASJON_UNGDOM,
        13,
        24,
        Access.DROPIN,
        "",
        True,
        3,
        "",
        "Tønsberg",
        "Drop-in for ungdom 13–24: helsesykepleier og lege, prevensjon, sjekk for "
        "kjønnssykdommer, samtaler om kropp, sex, søvn og hvordan man har det. Gratis.",
        "Kom innom uten time. Du kan snakke om kropp, sex, søvn eller hvordan du har det. "
        "Det er gratis.",
    ),
    "skolehelse-tonsberg": (
        "Skolehelsetjenesten Tønsberg",
        ServiceKind.SKOLEHELSE,
        6,
        20,
        Access.DROPIN,
        "",
        False,
        7,
        "",
        "Tønsberg",
        "Helsesykepleier på skolen: samtaler, oppfølging, kontakt videre til lege og psykolog.",
        "Helsesykepleieren på skolen din. Du kan stikke innom når døra er åpen.",
    ),
    "fastlege": (
        "Fastlegen din",
        ServiceKind.FASTLEGE,
        0,
        None,
        Access.PHONE,
        "",
        False,
        7,
        "",
        "",
        "Fastlege: første dør til helsehjelp, henviser til BUP og DPS. Fra 16 år bestiller "
        "ungdom selv og har taushetsplikt overfor foreldre.",
        "Legen din. Ring legekontoret eller bestill time på helsenorge.no. Fra du er 16 kan du "
        "gå alene.",
    ),
    "kommunepsykolog-tonsberg": (
        "Kommunepsykolog Tønsberg",
        ServiceKind.KOMMUNAL_PSYKISK_HELSE,
        12,
        None,
        Access.PHONE,
        "",
        True,
        14,
        "",
        "Tønsberg",
        "Psykisk helse og rus i kommunen: samtaler, kurs (f.eks. mestring av stress), "
        "kan henvise til BUP/DPS. Ingen henvisning nødvendig.",
        "Noen å snakke med over flere ganger når ting er vanskelig. Du trenger ikke henvisning.",
    ),
    "rus-tonsberg": (
        "Rustjenesten Tønsberg",
        ServiceKind.RUS,
        12,
        None,
        Access.PHONE,
        "",
        True,
        7,
        "",
        "Tønsberg",
        "Kommunal rustjeneste for unge: samtaler, oppfølging, samarbeid med TSB.",
        "Hvis alkohol, hasj eller andre rusmidler tar mye plass, kan du snakke med noen her. "
        "Du bestemmer tempoet.",
    ),
    "barnevern-tonsberg": (
        "Barnevernet Tønsberg",
        ServiceKind.BARNEVERN,
        0,
        25,
        Access.PHONE,
        "",
        True,
        7,
        "",
        "Tønsberg",
        "Barneverntjenesten: undersøkelse og hjelpetiltak, ettervern til 25. Kan henvise til "
        "BUP. Akutt utenom kontortid: barnevernvakten.",
        "Barnevernet skal hjelpe barn og unge som ikke har det trygt eller godt hjemme. De "
        "kan hjelpe både deg og familien din.",
    ),
    "nav-tonsberg": (
        "NAV Tønsberg",
        ServiceKind.NAV,
        16,
        None,
        Access.DIGITAL,
        "",
        True,
        7,
        "55 55 33 33",
        "Tønsberg",
        "Penger, bolig, jobb og aktivitet; ungdomsveileder for unge under 30. Mest 18+.",
        "Hjelp med penger, bolig eller jobb. Du kan skrive til NAV på nav.no eller ringe.",
    ),
    "ppt-tonsberg": (
        "PPT Tønsberg",
        ServiceKind.PPT,
        0,
        20,
        Access.REFERRAL,
        "skolen eller foreldre",
        False,
        30,
        "",
        "Tønsberg",
        "Pedagogisk-psykologisk tjeneste: utredning av lærevansker, råd til skolen om "
        "tilrettelegging.",
        "Hvis skolen er vanskelig å få til, kan PPT finne ut hva som kan gjøre det lettere. "
        "Skolen eller foreldrene dine tar kontakt.",
    ),
    "oppfolgingstjenesten-vestfold": (
        "Oppfølgingstjenesten Vestfold",
        ServiceKind.OPPFOLGINGSTJENESTEN,
        15,
        21,
        Access.PHONE,
        "",
        True,
        7,
        "",
        "Vestfold",
        "For ungdom 15–21 som ikke er i skole eller jobb: veiledning tilbake til skole, "
        "lærlingplass eller arbeid.",
        "Er du ute av skole eller jobb? De hjelper deg å finne en vei videre.",
    ),
    "barnas-jurist": (
        "Barnas Jurist",
        ServiceKind.BARNAS_JURIST,
        0,
        25,
        Access.DIGITAL,
        "",
        False,
        7,
        "",
        "",
        "Gratis juridisk veiledning for barn og unge: rettigheter i barnevern, skole, "
        "familie, arbeid.",
        "Lurer du på hvilke rettigheter du har? Her kan du spørre en jurist gratis.",
    ),
    "utekontakt-tonsberg": (
        "Utekontakten Tønsberg",
        ServiceKind.UTEKONTAKT,
        12,
        25,
        Access.DROPIN,
        "",
        True,
        3,
        "",
        "Tønsberg",
        "Oppsøkende arbeid i sentrum kveldstid; følger ungdom til andre tjenester.",
        "Voksne som er ute i byen på kveldstid. De kan bli med deg videre hvis du vil.",
    ),
    "konfliktradet-vestfold": (
        "Konfliktrådet Vestfold",
        ServiceKind.KONFLIKTRADET,
        0,
        None,
        Access.PHONE,
        "",
        False,
        14,
        "",
        "Vestfold",
        "Megling i konflikter og etter lovbrudd; ungdomsoppfølging og ungdomsstraff.",
        "Hjelp til å løse en krangel eller konflikt ved å snakke sammen med en nøytral person.",
    ),
    "atv-vestfold": (
        "Alternativ til Vold Vestfold",
        ServiceKind.ATV,
        0,
        None,
        Access.PHONE,
        "",
        False,
        7,
        "",
        "Vestfold",
        "Behandling for dem som utøver vold og for dem som er utsatt for vold, også barn og unge.",
        "For deg som har opplevd vold, eller som selv blir sint på en måte som skader andre.",
    ),
    "legevakt-tonsberg": (
        "Legevakt Tønsberg (116 117)",
        ServiceKind.LEGEVAKT,
        0,
        None,
        Access.PHONE,
        "",
        False,
        0,
        "116 117",
        "Tønsberg",
        "Legevakt utenom fastlegens åpningstid; ring 116 117 først.",
        "Trenger du lege når fastlegen er stengt? Ring 116 117. Er det livsfare: ring 113.",
    ),
}


def service_directory_seed() -> list[Service]:
    """Create or update the Vestfold/Tønsberg directory (idempotent, by slug). Phone numbers
    are left blank where only a local number exists: admins fill them in."""
    fields = (
        "name",
        "kind",
        "age_min",
        "age_max",
        "access",
        "referral_from",
        "takes_digital_handovers",
        "reply_days",
        "phone",
        "area",
        "offers",
        "youth_description",
    )
    rows = []
    with transaction.atomic():
        for slug, values in DIRECTORY.items():
            defaults = dict(zip(fields, values, strict=True))
            service, _created = Service.objects.update_or_create(
                slug=slug, defaults={**defaults, "active": True}
            )
            rows.append(service)
    return rows


def partner_create_or_update(
    *, username: str, password: str, service_slug: str, display_name: str | None = None
) -> PartnerProfile:
    """Create a partner user for one service (or update an existing partner's password,
    service and name). Raises django.core.exceptions.ValidationError for a weak password, an
    unknown service or a user who is staff (a person is staff or partner, never both)."""
    service = Service.objects.filter(slug=service_slug, active=True).first()
    if service is None:
        raise ValidationError(f"Unknown or inactive service {service_slug!r}.")
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.filter(username=username).first() or User(username=username)
        if user.pk and StaffProfile.objects.filter(user=user).exists():
            raise ValidationError(f"{username} is a staff account; a partner needs its own.")
        validate_password(password, user)
        user.set_password(password)
        user.is_active = True
        user.save()
        profile, _created = PartnerProfile.objects.update_or_create(
            user=user, defaults={"service": service, "display_name": display_name or username}
        )
    return profile


# -------------------------------------------------------------------------------------------
# Helpers


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _staff(user) -> StaffProfile:
    profile = chat_selectors.staff_profile(user) if user is not None else None
    if profile is None:
        raise ServiceError("not_allowed", _("Only staff can do this."))
    return profile


def _partner(user) -> PartnerProfile:
    profile = selectors.partner_profile(user)
    if profile is None:
        raise ServiceError("not_allowed", _("Only partners of a service can do this."))
    return profile


def _service(value) -> Service:
    """A service by id (int) or slug (str); `bad_service` if there is no active one."""
    qs = Service.objects.filter(active=True)
    if type(value) is int:
        service = qs.filter(pk=value).first()
    elif isinstance(value, str) and value:
        service = qs.filter(slug=value).first()
    else:
        service = None
    if service is None:
        raise ServiceError("bad_service", _("There is no such service in the directory."))
    return service


def _same_service(service: Service, value) -> bool:
    if type(value) is int:
        return value == service.pk
    return isinstance(value, str) and value == service.slug


def _text(value, *, code: str, limit: int, required: bool = False, what: str = "") -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or "\x00" in value:
        # A NUL character is no text PostgreSQL can store (forms and frames alike).
        raise ServiceError(code, _("{what} must be text.").format(what=what))
    value = value.strip()
    if required and not value:
        raise ServiceError(code, _("{what} is required.").format(what=what))
    if len(value) > limit:
        raise ServiceError(
            "too_long", _("{what} can be at most {n} characters.").format(what=what, n=limit)
        )
    return value


def _check_summary(summary) -> dict:
    """{section: text}; unknown sections refused, texts stripped, empty ones dropped."""
    if not isinstance(summary, dict):
        raise ServiceError("bad_summary", _("The summary is a set of sections."))
    unknown = sorted(set(summary) - set(SUMMARY_SECTIONS))
    if unknown:
        raise ServiceError(
            "bad_summary",
            _("Unknown sections {names}; use: {known}.").format(
                names=unknown, known=", ".join(SUMMARY_SECTIONS)
            ),
        )
    clean = {}
    for key in SUMMARY_SECTIONS:
        if key in summary:
            clean[key] = _text(
                summary[key],
                code="bad_summary",
                limit=SECTION_MAX_CHARS,
                what=str(SUMMARY_SECTIONS[key]),
            )
    return clean


def _check_scope(scope) -> list[str]:
    if not isinstance(scope, list | tuple) or not all(isinstance(k, str) for k in scope):
        raise ServiceError("bad_scope", _("The scope is a list of sections."))
    unknown = sorted(set(scope) - set(SUMMARY_SECTIONS))
    if unknown:
        raise ServiceError("bad_scope", _("Unknown sections {names}.").format(names=unknown))
    return [key for key in SUMMARY_SECTIONS if key in scope]


def _check_reach(reach) -> str:
    if reach not in Reach.values:
        raise ServiceError(
            "bad_reach", _("Reach is one of: {known}.").format(known=", ".join(Reach.values))
        )
    return reach


def _person(named_person) -> str:
    return _text(named_person, code="bad_person", limit=NAMED_PERSON_MAX, what=_("The name"))


def _seal(key: bytes, handover_id, field: str, text: str) -> bytes:
    return crypto.seal_text(key, text, aad=selectors.field_aad(handover_id, field))


def _key_or_deleted(handover: Handover) -> bytes:
    key = selectors.data_key(handover.id)
    if key is None:
        raise ServiceError("deleted", _("This handover's content has been deleted."))
    return key


def _destroy_key(handover: Handover, now: datetime) -> None:
    """The partner (and everyone) loses access to the summary and details at once."""
    HandoverKey.objects.filter(handover=handover).update(wrapped=None, destroyed_at=now)
    handover.code_selector = None
    handover.code_hash = ""


def _lock(handover_id) -> Handover:
    return selectors.handover_with_relations(handover_id, lock=True)


def _staff_handover(user, handover_id) -> Handover:
    """The locked handover, if `user` may act on it: its sender, or the staff member the
    conversation is assigned to now (after a transfer). Supervisors read, they do not act."""
    _staff(user)
    handover = _lock(handover_id)
    if selectors.staff_relation(user, handover) not in ("sender", "conversation"):
        raise ServiceError("not_allowed", _("You cannot change this handover."))
    return handover


def _editable(user, handover_id) -> tuple[Handover, bytes]:
    """The locked handover and its data key, if `user` may act on it and the youth has not
    said yes yet (`not_editable` after)."""
    handover = _staff_handover(user, handover_id)
    if handover.state not in Handover.EDITABLE_STATES:
        raise ServiceError("not_editable", _("This handover can no longer be changed."))
    return handover, _key_or_deleted(handover)


def _audit(action: str, handover: Handover, *, actor=None, actor_kind=None, **detail) -> None:
    audit_record(
        action,
        actor=actor,
        actor_kind=actor_kind,
        conversation_id=handover.conversation_id,
        handover=handover.id,
        service=handover.service_id,
        **detail,
    )


# -------------------------------------------------------------------------------------------
# Staff: draft, edit, propose, close


def handover_draft(
    *,
    user,
    conversation_id,
    service,
    reach: str,
    summary: dict,
    named_person: str = "",
    scope: list[str] | None = None,
) -> Handover:
    """Start a handover of the youth in a conversation the staff member has (active or
    ended) to a service that takes digital handovers. Nothing is shown to anyone yet."""
    _staff(user)
    reach = _check_reach(reach)
    clean = _check_summary(summary)
    scope = _check_scope(scope) if scope is not None else []
    named_person = _person(named_person)
    target = _service(service)
    if not target.takes_digital_handovers:
        raise ServiceError(
            "not_digital",
            _(
                "{service} does not take digital handovers. Give the youth its contact details."
            ).format(service=target.name),
        )
    try:
        with transaction.atomic():
            conversation = chat_selectors.conversation_for(
                Actor.for_staff(user), conversation_id, lock=True
            )
            if conversation.state not in (Conversation.State.ACTIVE, Conversation.State.ENDED):
                raise ServiceError(
                    "closed", _("A handover starts from a conversation you have had.")
                )
            handover = Handover.objects.create(
                conversation=conversation,
                youth_id=conversation.youth_id,
                service=target,
                named_person=named_person,
                created_by=user,
                reach=reach,
                scope=scope,
            )
            data_key, stored = HandoverKey.wrap_new(f"handover:{handover.id}")
            HandoverKey.objects.create(handover=handover, **stored)
            handover.summary = _seal(data_key, handover.id, "summary", json.dumps(clean))
            handover.save(update_fields=["summary"])
            _audit("handover.draft", handover, actor=user)
            publish_handover(handover.id)
    except IntegrityError:
        raise ServiceError(
            "conflict",
            _("This youth already has an open handover to {service}.").format(service=target.name),
        ) from None
    return handover


def handover_update(
    *,
    user,
    handover_id,
    summary: dict | None = None,
    scope: list[str] | None = None,
    named_person: str | None = None,
    reach: str | None = None,
) -> Handover:
    """Edit a handover before the youth has said yes. `summary` sets the given sections
    (an empty text clears one). Editing a proposed handover takes the question back from
    the youth (state draft) until it is proposed again: a youth only ever consents to the
    text they were shown, to the person named in it."""
    clean = _check_summary(summary) if summary is not None else None
    scope = _check_scope(scope) if scope is not None else None
    reach = _check_reach(reach) if reach is not None else None
    if named_person is not None:
        named_person = _person(named_person)
    with transaction.atomic():
        handover, key = _editable(user, handover_id)
        changed = []
        if clean is not None:
            current = selectors.summary_of(handover, key) or {}
            current.update(clean)
            current = {k: v for k, v in current.items() if v}
            handover.summary = _seal(key, handover.id, "summary", json.dumps(current))
            changed.append("summary")
        for field, value in (("scope", scope), ("named_person", named_person), ("reach", reach)):
            if value is not None:
                setattr(handover, field, value)
                changed.append(field)
        if handover.state == Handover.State.PROPOSED:
            handover.state = Handover.State.DRAFT
            changed.append("state")
        handover.save()
        _audit("handover.update", handover, actor=user, fields=",".join(changed))
        publish_handover(handover.id)
    return handover


def handover_offer(*, user, conversation_id, service, reach, summary, named_person="", scope=None):
    """The dashboard's one step: draft and show to the youth at once (both or neither)."""
    with transaction.atomic():
        draft = handover_draft(
            user=user,
            conversation_id=conversation_id,
            service=service,
            reach=reach,
            summary=summary,
            named_person=named_person,
            scope=scope,
        )
        return handover_propose(user=user, handover_id=draft.id)


def _proposal_scope(handover: Handover, summary: dict, scope: list[str]) -> list[str]:
    """The sections to ask the youth about: the required ones must have text, and so must
    every section of the scope (default: every section with text). The conversation must
    still exist (a proposal is asked in it)."""
    missing = [key for key in REQUIRED_SECTIONS if not summary.get(key)]
    if missing:
        raise ServiceError(
            "incomplete",
            _("Fill in before asking the youth: {names}.").format(
                names=", ".join(str(SUMMARY_SECTIONS[k]) for k in missing)
            ),
        )
    scope = scope or [key for key in SUMMARY_SECTIONS if summary.get(key)]
    empty = [key for key in scope if not summary.get(key)]
    if empty:
        raise ServiceError(
            "bad_scope",
            _("These sections are empty: {names}.").format(
                names=", ".join(str(SUMMARY_SECTIONS[k]) for k in empty)
            ),
        )
    if handover.conversation_id is None:
        raise ServiceError("closed", _("This conversation has been deleted."))
    return scope


def handover_propose(*, user, handover_id, now: datetime | None = None) -> Handover:
    """Show the handover to the youth and ask for consent (`consent.request`). Needs the
    required sections and a scope of sections that have text (default: every section with
    text). Also after a no or a request for changes: each proposal asks anew."""
    now = _now(now)
    with transaction.atomic():
        handover = _staff_handover(user, handover_id)
        if handover.state == Handover.State.PROPOSED:
            raise ServiceError("conflict", _("The youth has already been asked."))
        if handover.state not in (
            Handover.State.DRAFT,
            Handover.State.CHANGES_REQUESTED,
            Handover.State.REFUSED,
        ):
            raise ServiceError("not_editable", _("This handover can no longer be proposed."))
        summary = selectors.summary_of(handover, _key_or_deleted(handover)) or {}
        handover.scope = _proposal_scope(handover, summary, handover.scope)
        handover.state = Handover.State.PROPOSED
        handover.proposed_at = now
        handover.save(update_fields=["scope", "state", "proposed_at", "updated_at"])
        _audit("handover.propose", handover, actor=user)
        publish_handover(handover.id, consent_request=True)
    return handover


def handover_revise(
    *,
    user,
    handover_id,
    reach: str,
    summary: dict,
    named_person: str = "",
    scope: list[str] | None = None,
    now: datetime | None = None,
) -> Handover:
    """After the youth asked for changes (or before they answered): replace what they are
    asked about (the whole summary, the sections to share, the named person, the reach) and
    ask again at once, in one step. The youth gets a new `consent.request`; its text version
    differs, so an answer to the earlier text is `stale`. The service stays the same (another
    service needs its own handover). Not after a no (`not_editable`): a no is respected;
    staff may start a new proposal later if the youth wants one."""
    now = _now(now)
    reach = _check_reach(reach)
    clean = _check_summary(summary)
    scope = _check_scope(scope) if scope is not None else []
    named_person = _person(named_person)
    with transaction.atomic():
        handover, key = _editable(user, handover_id)
        previous = handover.state
        handover.scope = _proposal_scope(handover, clean, scope)  # default: sections with text
        handover.summary = _seal(key, handover.id, "summary", json.dumps(clean))
        handover.named_person = named_person
        handover.reach = reach
        handover.state = Handover.State.PROPOSED
        handover.proposed_at = now
        handover.save()
        _audit("handover.revise", handover, actor=user, previous=previous)
        publish_handover(handover.id, consent_request=True)
    return handover


CLOSABLE = ("draft", "proposed", "changes_requested", "refused", "declined", "met")


def handover_close(*, user, handover_id, now: datetime | None = None) -> Handover:
    """The sender (or the conversation's staff member) closes a handover that is done or
    not going ahead; its content is deleted (the key destroyed). A sent or accepted one
    cannot be closed: the youth's yes stands until the partner answers, the youth withdraws
    or it expires. A declined one carries its alternative offer (the model refuses a decline
    without one), so it is closed only after that offer was made."""
    now = _now(now)
    with transaction.atomic():
        handover = _staff_handover(user, handover_id)
        if handover.state not in CLOSABLE:
            raise ServiceError(
                "not_closable",
                _("A handover waiting for the service or accepted by it cannot be closed."),
            )
        if handover.state == Handover.State.DECLINED and handover.alternative is None:
            raise ServiceError(
                "alternative_required",
                _("A declined handover cannot be closed without an alternative offer."),
            )
        previous = handover.state
        handover.state = Handover.State.CLOSED
        handover.closed_at = now
        _destroy_key(handover, now)
        handover.save()
        _audit("handover.close", handover, actor=user, previous=previous)
        publish_handover(handover.id)
        _end_led_chat(handover, by="system")
    return handover


# -------------------------------------------------------------------------------------------
# Youth: consent and withdrawal


@dataclass(frozen=True)
class ConsentResult:
    consent: Consent
    handover: Handover
    # reach=code: the handover code, shown to the youth this once (only its hash is kept).
    code: str | None = None


def _hash_code_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 2**20, dklen=32
    )
    return f"scrypt${salt.hex()}${digest.hex()}"


def _verify_code_secret(secret: str, stored: str) -> bool:
    try:
        _scheme, salt, digest = stored.split("$")
        salt_bytes = bytes.fromhex(salt)
    except ValueError:
        return False
    computed = hashlib.scrypt(
        secret.encode(),
        salt=salt_bytes,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=64 * 2**20,
        dklen=32,
    )
    return hmac.compare_digest(computed.hex(), digest)


def _save_with_code(handover: Handover) -> str:
    """Save the handover with a fresh code (inside the caller's transaction); returns the
    code, shown once. A selector another handover took meanwhile is drawn again."""
    secret = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_SECRET_LEN))
    handover.code_hash = _hash_code_secret(secret)
    for _attempt in range(20):
        selector = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_SELECTOR_LEN))
        if Handover.objects.filter(code_selector=selector).exists():
            continue
        handover.code_selector = selector
        try:
            with transaction.atomic():  # a savepoint: a lost race leaves the rest intact
                handover.save()
        except IntegrityError:
            continue
        return f"{selector}-{secret}"
    raise ServiceError("unavailable", _("Could not make a code right now. Try again."))


def consent_answer(
    *,
    youth: Youth,
    handover_id,
    service,
    answer: str,
    text_version: str,
    age_band: str | None = None,
    exceptions=(),
    reason: str = "",
    contact: str = "",
    now: datetime | None = None,
) -> ConsentResult:
    """The youth's answer to a proposed handover, for the service they ticked (id or slug):

    - `agree` / `agree_except` (with `exceptions`: sections of the scope and/or topics):
      needs `age_band`; the consent is recorded (expires after YOUTHHUB_CONSENT_DAYS) and the
      handover is sent to the service's inbox in the same step; reach=contact takes the
      optional `contact` details (encrypted, for the accepting partner only); reach=code
      returns the handover code once;
    - `change` → changes_requested, `no` → refused, each with an optional `reason`.
    Every answer is recorded with the wording version shown (`text_version`).
    """
    now = _now(now)
    if answer not in Consent.Answer.values:
        raise ServiceError(
            "bad_answer",
            _("The answer is one of: {known}.").format(known=", ".join(Consent.Answer.values)),
        )
    if not isinstance(text_version, str) or not 1 <= len(text_version.strip()) <= 64:
        raise ServiceError("bad_text_version", _("Which consent text was shown is missing."))
    if age_band not in (None, "") and age_band not in AgeBand.values:
        raise ServiceError("bad_age_band", _("Choose under 16 or 16 or older."))
    agreeing = answer in Consent.AGREEING
    if agreeing and not age_band:
        raise ServiceError(
            "age_band_required", _("Tell us if you are under 16 or 16 or older first.")
        )
    if not isinstance(exceptions, list | tuple) or not all(isinstance(e, str) for e in exceptions):
        raise ServiceError("bad_exceptions", _("Exceptions are a list of sections or topics."))
    exceptions = list(dict.fromkeys(exceptions))
    unknown = [e for e in exceptions if e not in SUMMARY_SECTIONS and e not in TOPICS]
    if unknown:
        raise ServiceError("bad_exceptions", _("Unknown exceptions {names}.").format(names=unknown))
    if answer == Consent.Answer.AGREE and exceptions:
        raise ServiceError("bad_exceptions", _("To leave something out, answer 'yes, except'."))
    if answer == Consent.Answer.AGREE_EXCEPT and not exceptions:
        raise ServiceError("bad_exceptions", _("Choose what to leave out."))
    if not agreeing and exceptions:
        raise ServiceError("bad_exceptions", _("Exceptions belong to a yes."))
    reason = _text(reason, code="bad_reason", limit=REASON_MAX, what=_("The reason"))
    if reason and agreeing:
        raise ServiceError("bad_reason", _("A reason belongs to a no or a change."))
    contact = _text(contact, code="bad_contact", limit=CONTACT_MAX, what=_("Contact details"))
    with transaction.atomic():
        handover = _lock(handover_id)
        if handover.youth_id != youth.id:
            raise ServiceError("not_allowed", _("This is not your handover."))
        if handover.state in ("sent", "accepted", "declined", "met"):
            raise ServiceError("already_answered", _("You have already answered this."))
        if handover.state != Handover.State.PROPOSED:
            raise ServiceError("not_proposed", _("There is no question to answer here now."))
        if not _same_service(handover.service, service):
            raise ServiceError(
                "wrong_service",
                _("You were asked about {service}, not another service.").format(
                    service=handover.service.name
                ),
            )
        asked = selectors.youth_view(handover, now=now)["ask"]["text_version"]
        if text_version.strip() != asked:
            # The proposal changed after the youth's page showed it: an answer counts only
            # for what was read.
            raise ServiceError("stale", _("The question has changed. Read it again, please."))
        excepted_sections = [e for e in exceptions if e in SUMMARY_SECTIONS]
        if any(e not in handover.scope for e in excepted_sections):
            raise ServiceError("bad_exceptions", _("That section is not part of what is shared."))
        if agreeing and all(k in excepted_sections for k in handover.scope):
            raise ServiceError(
                "nothing_shared", _("You left everything out. If you do not want to share, say no.")
            )
        if contact and not (agreeing and handover.reach == Reach.CONTACT):
            raise ServiceError("bad_contact", _("Contact details are not asked for here."))
        key = _key_or_deleted(handover)
        consent = Consent(
            handover=handover,
            youth=youth,
            service=handover.service,
            named_person=handover.named_person,
            scope=list(handover.scope),
            exceptions=exceptions,
            text_version=text_version.strip(),
            age_band=age_band or "",
            answer=answer,
            given_at=now,
            expires_at=now + timedelta(days=selectors.consent_days()) if agreeing else None,
        )
        if reason:
            consent.reason = _seal(key, handover.id, f"reason:{consent.id}", reason)
        consent.save()
        _audit(
            "consent.answer",
            handover,
            actor_kind=YOUTH,
            consent=consent.id,
            answer=answer,
            age_band=age_band or None,
            text_version=consent.text_version,
        )
        code = None
        if agreeing:
            handover.consent = consent
            handover.state = Handover.State.SENT
            handover.sent_at = now
            handover.reply_expected_by = now + timedelta(days=handover.service.reply_days)
            if contact:
                handover.contact = _seal(key, handover.id, "contact", contact)
            if handover.reach == Reach.CODE:
                code = _save_with_code(handover)
            else:
                handover.save()
            _audit("handover.send", handover, actor_kind=YOUTH, consent=consent.id)
            stats_record_handover(handover, "sent")
        else:
            handover.state = (
                Handover.State.REFUSED
                if answer == Consent.Answer.NO
                else Handover.State.CHANGES_REQUESTED
            )
            handover.save(update_fields=["state", "updated_at"])
        publish_handover(handover.id)
    return ConsentResult(consent=consent, handover=handover, code=code)


def consent_withdraw(*, youth: Youth, handover_id, now: datetime | None = None) -> Handover:
    """The youth takes back their yes, at any time: the handover is withdrawn, its key is
    destroyed, and the partner loses access at once (their screen is told to drop it)."""
    now = _now(now)
    with transaction.atomic():
        handover = _lock(handover_id)
        if handover.youth_id != youth.id:
            raise ServiceError("not_allowed", _("This is not your handover."))
        consent = handover.consent
        if (
            handover.state not in ("sent", "accepted", "declined", "met")
            or consent is None
            or consent.withdrawn_at is not None
        ):
            raise ServiceError("nothing_to_withdraw", _("There is no yes to take back here."))
        Consent.objects.filter(pk=consent.pk).update(withdrawn_at=now)
        consent.withdrawn_at = now
        previous = handover.state
        handover.state = Handover.State.WITHDRAWN
        handover.withdrawn_at = now
        _destroy_key(handover, now)
        handover.save()
        _audit(
            "consent.withdraw", handover, actor_kind=YOUTH, consent=consent.id, previous=previous
        )
        publish_handover(handover.id)
        _end_led_chat(handover, by="youth")
    return handover


# -------------------------------------------------------------------------------------------
# Partners: accept, decline, met, code


def _partner_answerable(user, handover_id, now: datetime) -> tuple[Handover, PartnerProfile]:
    profile = _partner(user)
    handover = _lock(handover_id)
    if handover.service_id != profile.service_id:
        raise ServiceError("not_found", _("There is no such handover."))
    if handover.answered_at is not None or handover.state in ("accepted", "declined", "met"):
        raise ServiceError("already_answered", _("This handover has already been answered."))
    problem = selectors.consent_problem(handover, now)
    if problem == "expired":
        raise ServiceError("consent_expired", _("The youth's consent has expired."))
    block = selectors.partner_block(handover, profile.service_id, now)
    if block is not None:
        raise block
    return handover, profile


def handover_accept(
    *,
    user,
    handover_id,
    first_meeting_at: datetime,
    where: str = "",
    who: str = "",
    now: datetime | None = None,
) -> Handover:
    """A partner of the service accepts, with the first meeting's time (and optionally
    where and with whom). From now on the service is responsible."""
    now = _now(now)
    if not isinstance(first_meeting_at, datetime) or timezone.is_naive(first_meeting_at):
        raise ServiceError("bad_time", _("Give the first meeting's date and time."))
    if not now - timedelta(hours=1) <= first_meeting_at <= now + MEETING_HORIZON:
        raise ServiceError("bad_time", _("The first meeting must be within the next year."))
    where = _text(where, code="bad_where", limit=MEETING_WHERE_MAX, what=_("The place"))
    who = _text(who, code="bad_who", limit=MEETING_WHO_MAX, what=_("The name"))
    with transaction.atomic():
        handover, _profile = _partner_answerable(user, handover_id, now)
        handover.state = Handover.State.ACCEPTED
        handover.answered_at = now
        handover.answered_by = user
        handover.first_meeting_at = first_meeting_at
        handover.meeting_where = where
        handover.meeting_who = who
        handover.save()
        _audit("handover.accept", handover, actor=user, actor_kind=PARTNER)
        stats_record_handover(handover, "accepted")
        publish_handover(handover.id)
    return handover


def handover_decline(
    *,
    user,
    handover_id,
    reason: str,
    alternative: str,
    alternative_service=None,
    now: datetime | None = None,
) -> Handover:
    """A partner declines: a reason and an alternative offer are both required (a returned
    handover must come back with one), optionally a service from the directory. The sender
    stays responsible and is told."""
    now = _now(now)
    reason = _text(
        reason, code="reason_required", limit=REASON_MAX, required=True, what=_("The reason")
    )
    alternative = _text(
        alternative,
        code="alternative_required",
        limit=REASON_MAX,
        required=True,
        what=_("An alternative offer"),
    )
    other = _service(alternative_service) if alternative_service is not None else None
    with transaction.atomic():
        handover, _profile = _partner_answerable(user, handover_id, now)
        if other is not None and other.pk == handover.service_id:
            raise ServiceError("bad_service", _("Suggest another service than your own."))
        key = _key_or_deleted(handover)
        handover.state = Handover.State.DECLINED
        handover.answered_at = now
        handover.answered_by = user
        handover.decline_reason = _seal(key, handover.id, "decline_reason", reason)
        handover.alternative = _seal(key, handover.id, "alternative", alternative)
        handover.alternative_service = other
        handover.save()
        _audit(
            "handover.decline",
            handover,
            actor=user,
            actor_kind=PARTNER,
            alternative_service=other.pk if other else None,
        )
        stats_record_handover(handover, "declined")
        publish_handover(handover.id)
        _end_led_chat(handover, by="partner")
    return handover


def handover_met(*, user, handover_id, now: datetime | None = None) -> Handover:
    """The first meeting took place: marked by a partner of the service or by the sender."""
    now = _now(now)
    with transaction.atomic():
        profile = selectors.partner_profile(user)
        if profile is not None:
            handover = _lock(handover_id)
            if handover.service_id != profile.service_id:
                raise ServiceError("not_found", _("There is no such handover."))
            kind = PARTNER
        else:
            handover = _staff_handover(user, handover_id)
            kind = AuditEvent.ActorKind.STAFF
        if handover.state != Handover.State.ACCEPTED:
            raise ServiceError("not_accepted", _("Only an accepted handover can be met."))
        handover.state = Handover.State.MET
        handover.met_at = now
        handover.save(update_fields=["state", "met_at", "updated_at"])
        _audit("handover.met", handover, actor=user, actor_kind=kind)
        stats_record_handover(handover, "met")
        publish_handover(handover.id)
    return handover


def handover_by_code(user, code: str, *, now: datetime | None = None) -> dict:
    """A partner at the service desk enters the code the youth shows: the handover (as
    selectors.handover_for_partner, audited with via=code) if it is their service's and the
    consent allows it. Guesses are rate-limited per partner."""
    now = _now(now)
    profile = _partner(user)
    if not ratelimit.allow(
        f"handover-code:{user.pk}", limit=CODE_TRIES_PER_MINUTE, window_seconds=60
    ):
        raise ServiceError("rate_limited", _("Too many tries. Wait a minute."))
    normal = "".join(ch for ch in str(code).upper() if ch.isalnum())
    wrong = ServiceError("bad_code", _("That code does not match a handover to you."))
    if len(normal) != CODE_SELECTOR_LEN + CODE_SECRET_LEN:
        raise wrong
    selector, secret = normal[:CODE_SELECTOR_LEN], normal[CODE_SELECTOR_LEN:]
    with transaction.atomic():
        row = Handover.objects.filter(code_selector=selector).values("id", "code_hash").first()
        if row is None or not _verify_code_secret(secret, row["code_hash"]):
            raise wrong
        handover = selectors.handover_with_relations(row["id"])
        block = selectors.partner_block(handover, profile.service_id, now)
        if block is not None:
            raise wrong if block.code == "not_found" else block
        return selectors.partner_detail(handover, user, now=now, via="code")


# -------------------------------------------------------------------------------------------
# Time


def handover_tick(*, now: datetime | None = None) -> dict:
    """Time-driven changes, safe to run from every worker at once (conditional writes):

    1. expiry: a sent handover whose consent expired → expired (key destroyed); an answered
       one keeps its state but its content is deleted; a draft / proposal / refused one
       untouched for YOUTHHUB_CONSENT_DAYS → expired (key destroyed);
    2. overdue: a sent handover past its expected reply without an answer is flagged once
       (`overdue_flagged_at`) and its sender and the supervisors are told.

    Returns {"expired": n, "content_deleted": n, "overdue": [{"handover", "notify"}]}.
    """
    now = _now(now)
    expired = deleted = 0
    stale_before = now - timedelta(days=selectors.consent_days())
    due = list(
        Handover.objects.filter(
            state=Handover.State.SENT, consent__expires_at__lte=now
        ).values_list("id", flat=True)
    ) + list(
        Handover.objects.filter(
            state__in=("draft", "proposed", "changes_requested", "refused"),
            updated_at__lte=stale_before,
        ).values_list("id", flat=True)
    )
    for handover_id in due:
        with transaction.atomic():
            handover = _lock(handover_id)
            sent_expired = (
                handover.state == Handover.State.SENT and handover.consent.expires_at <= now
            )
            stale = (
                handover.state in ("draft", "proposed", "changes_requested", "refused")
                and handover.updated_at <= stale_before
            )
            if not (sent_expired or stale):
                continue  # another worker got there first, or it changed meanwhile
            previous = handover.state
            handover.state = Handover.State.EXPIRED
            handover.expired_at = now
            _destroy_key(handover, now)
            handover.save()
            _audit("handover.expire", handover, previous=previous)
            publish_handover(handover.id)
            _end_led_chat(handover, by="system")
            expired += 1
    answered = Handover.objects.filter(
        state__in=("accepted", "declined", "met"),
        consent__expires_at__lte=now,
        key__wrapped__isnull=False,
    ).values_list("id", flat=True)
    for handover_id in list(answered):
        with transaction.atomic():
            handover = _lock(handover_id)
            if not HandoverKey.objects.filter(handover=handover, wrapped__isnull=False).exists():
                continue
            _destroy_key(handover, now)
            handover.save()
            _audit("handover.expire", handover, previous=handover.state, kept_state=True)
            publish_handover(handover.id)
            _end_led_chat(handover, by="system")
            deleted += 1
    overdue = []
    supervisors = selectors.supervisor_ids()
    for handover in selectors.handovers_overdue(now, unflagged_only=True):
        with transaction.atomic():
            flagged = Handover.objects.filter(
                pk=handover.pk,
                state=Handover.State.SENT,
                answered_at__isnull=True,
                overdue_flagged_at__isnull=True,
            ).update(overdue_flagged_at=now)
            if not flagged:
                continue
            notify = selectors.staff_to_tell(handover, also=supervisors)
            _audit("handover.overdue", handover, notified=",".join(map(str, notify)))
            publish_handover(handover.id, also_staff=tuple(supervisors))
            overdue.append({"handover": handover.id, "notify": notify})
    return {"expired": expired, "content_deleted": deleted, "overdue": overdue}


# -------------------------------------------------------------------------------------------
# Anonymous consultation (Asker's pattern)


def consultation_ask(*, user, service, question: str) -> Consultation:
    """Staff ask a service about a situation without naming anyone (no youth, no
    conversation is linked). The question is encrypted under its own key."""
    _staff(user)
    question = _text(
        question, code="empty", limit=QUESTION_MAX, required=True, what=_("The question")
    )
    target = _service(service)
    if not target.takes_digital_handovers:
        raise ServiceError(
            "not_digital",
            _("{service} does not answer questions here.").format(service=target.name),
        )
    with transaction.atomic():
        consultation = Consultation(service=target, asked_by=user)
        data_key, stored = Consultation.wrap_new(consultation.context())
        consultation.master_key_id = stored["master_key_id"]
        consultation.wrapped = stored["wrapped"]
        consultation.question = crypto.seal_text(
            data_key, question, aad=selectors.consultation_aad(consultation.id, "question")
        )
        consultation.save()
        audit_record(
            "consultation.ask", actor=user, consultation=consultation.id, service=target.pk
        )
        publish_consultation(consultation.id)
    return consultation


def consultation_answer(*, user, consultation_id, answer: str, now: datetime | None = None):
    """A partner of the service answers a consultation, once."""
    now = _now(now)
    profile = _partner(user)
    answer = _text(answer, code="empty", limit=QUESTION_MAX, required=True, what=_("The answer"))
    consultation_id = selectors.handover_uuid(consultation_id)
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().filter(id=consultation_id).first()
        if consultation is None or consultation.service_id != profile.service_id:
            raise ServiceError("not_found", _("There is no such question."))
        if consultation.answered_at is not None:
            raise ServiceError("already_answered", _("This question has already been answered."))
        key = selectors.consultation_key(consultation)
        if key is None:
            raise ServiceError("deleted", _("This question has been deleted."))
        consultation.answer = crypto.seal_text(
            key, answer, aad=selectors.consultation_aad(consultation.id, "answer")
        )
        consultation.answered_by = user
        consultation.answered_at = now
        consultation.save(update_fields=["answer", "answered_by", "answered_at"])
        audit_record(
            "consultation.answer",
            actor=user,
            actor_kind=PARTNER,
            consultation=consultation.id,
            service=consultation.service_id,
        )
        publish_consultation(consultation.id)
    return consultation


# Demo partner accounts seed_demo creates (password: seed_demo's DEMO_PASSWORD).
DEMO_PARTNERS = [
    ("bup", "bup-vestfold", "BUP Vestfold – inntaksteamet"),
    ("hfu", "hfu-tonsberg", "Helsestasjon for ungdom Tønsberg"),
]


def handover_demo_seed(*, password: str) -> list[PartnerProfile]:
    """The directory and the demo partners (bup, hfu), for seed_demo."""
    service_directory_seed()
    return [
        partner_create_or_update(
            username=username, password=password, service_slug=slug, display_name=name
        )
        for username, slug, name in DEMO_PARTNERS
    ]


# -------------------------------------------------------------------------------------------
# Warm handover: the partner joins the live chat


def handover_partner_join(*, user, conversation_id) -> tuple[Handover, int]:
    """A partner of the service joins the youth's chat for a three-way introduction (a warm
    handover, sent or accepted, consent valid). The first join fixes the seq from which the
    partner sees the chat; youth and staff get a `joined` frame. Returns (handover, from_seq)."""
    conversation_id = chat_selectors.conversation_uuid(conversation_id)
    with transaction.atomic():
        joinable = selectors.partner_joinable(user, conversation_id)
        if not joinable:
            raise ServiceError(
                "not_allowed", _("You cannot join this conversation (no valid warm handover).")
            )
        handover = _lock(joinable[0].id)
        conversation = Conversation.objects.select_for_update().get(id=conversation_id)
        if handover.partner_joined_by_id is None:
            # Who of the service joined: named to the youth if the chat is passed to them.
            # Staff's card says so (and offers to pass the chat on).
            handover.partner_joined_by = user
            handover.save(update_fields=["partner_joined_by"])
            publish_handover(handover.id)
        first = handover.partner_joined_seq is None
        if first:
            handover.partner_joined_seq = conversation.latest_seq
            handover.save(update_fields=["partner_joined_seq"])
            _audit("handover.join", handover, actor=user, actor_kind=AuditEvent.ActorKind.PARTNER)
            chat_events.publish_on_commit(
                chat_events.conversation_group(conversation_id),
                {
                    "type": "joined",
                    "conversation_id": str(conversation_id),
                    "name": chat_selectors.author_name(user),
                    "service": handover.service.name,
                },
            )
    return handover, handover.partner_joined_seq


def handover_chat_pass(*, user, handover_id, now: datetime | None = None):
    """The staff member in the chat passes it to the partner who joined it (a warm
    handover, sent or accepted, consent valid): the conversation stays active, led by the
    handover instead of the staff member, who lets go of it (their capacity, their open
    conversations). Youth, staff and partner get `passed`; audited (`handover.chat_pass`).
    The partner may then end it (`handover.chat_end`); a withdrawal, expiry or decline ends
    it (nobody would be left). Returns (handover, the `passed` frame)."""
    now = _now(now)
    _staff(user)
    with transaction.atomic():
        handover = _lock(handover_id)
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("youth")
            .filter(id=handover.conversation_id)
            .first()
        )
        if conversation is not None and conversation.led_by_id == handover.id:
            if handover.chat_passed_by_id == user.id:
                raise ServiceError("already_passed", _("You have already passed this chat."))
            raise ServiceError("not_allowed", _("You are not part of this conversation."))
        if conversation is None or conversation.assigned_staff_id != user.id:
            raise ServiceError("not_allowed", _("You are not part of this conversation."))
        if conversation.state != Conversation.State.ACTIVE:
            raise ServiceError("closed", _("This conversation has ended."))
        if conversation.channel == Conversation.Channel.DROPIN and conversation.arrived_at is None:
            raise ServiceError(
                "not_arrived", _("The youth has not come to the room yet: pass it once they have.")
            )
        if handover.reach != Reach.WARM:
            raise ServiceError(
                "not_warm", _("Only a warm handover lets the service continue the chat.")
            )
        problem = selectors.consent_problem(handover, now)
        if problem == "expired":
            raise ServiceError("consent_expired", _("The youth's consent has expired."))
        if problem is not None or handover.state not in (
            Handover.State.SENT,
            Handover.State.ACCEPTED,
        ):
            raise ServiceError(
                "no_consent",
                _("The youth has not said yes to this service (or took the yes back)."),
            )
        if handover.partner_joined_seq is None or handover.partner_joined_by_id is None:
            raise ServiceError("not_joined", _("Nobody from the service has joined the chat yet."))
        handover.chat_passed_at = now
        handover.chat_passed_by = user
        handover.chat_passed_seq = conversation.latest_seq
        handover.save(
            update_fields=["chat_passed_at", "chat_passed_by", "chat_passed_seq", "updated_at"]
        )
        conversation.assigned_staff = None
        conversation.led_by = handover
        conversation.save(update_fields=["assigned_staff", "led_by"])
        chat_services.conversation_let_go(conversation, by=user)
        _audit("handover.chat_pass", handover, actor=user)
        frame = chat_selectors.passed_frame(conversation, by=user)
        chat_events.publish_on_commit(chat_events.conversation_group(conversation.id), frame)
        publish_handover(handover.id)
    return handover, frame


def _end_led_chat(handover: Handover, *, by: str) -> None:
    """Inside the caller's transaction (handover locked): a chat passed to this handover's
    service ends when the service may no longer be in it (withdrawal, expiry, decline,
    closing), as nobody would be left to answer the youth. After publish_handover, so the
    partner's socket is closed ("closed") before the chat's `ended`."""
    if handover.conversation_id is None:
        return
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("youth")
        .filter(id=handover.conversation_id, led_by=handover, state=Conversation.State.ACTIVE)
        .first()
    )
    if conversation is not None:
        chat_services.conversation_close(conversation, by=by)
