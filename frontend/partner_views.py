"""Pages for partners (someone at a receiving service, docs/handover.md): the inbox of
handovers and questions addressed to their service, a handover's shared summary with the
answer forms (accept, decline, first meeting held), lookup by handover code, and the warm
handover chat.

Server-rendered, CSRF-protected POST forms; every write goes through
`youthhub.handover.services`, every read of a summary through the audited selectors. A
ServiceError re-renders the page with its message and changes nothing; a success redirects
(303) back with a confirmation.
"""

from datetime import datetime
from functools import wraps
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from chat.errors import ServiceError
from chat.models import Conversation
from youthhub.handover import selectors, services
from youthhub.handover.models import AgeBand, Handover, Reach

# -- access ----------------------------------------------------------------------------------


def partner_required(view):
    """Logged in (else the login page) and a partner of a service (else 403). The profile is
    `request.partner`. Nothing of these pages is kept in a cache."""

    @wraps(view)
    @login_required
    @never_cache
    def wrapped(request, *args, **kwargs):
        profile = selectors.partner_profile(request.user)
        if profile is None:
            raise PermissionDenied(_("Only partners of a service can open these pages."))
        request.partner = profile
        return view(request, *args, **kwargs)

    return wrapped


def see_other(url: str):
    """Redirect after a successful POST (303: the browser follows with a GET)."""
    response = redirect(url)
    response.status_code = 303
    return response


def refusal_status(error: ServiceError) -> int:
    return 404 if error.code == "not_found" else 403


# -- shaping for the templates ---------------------------------------------------------------


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value or ""


def reach_explained(reach: str) -> str:
    if reach == Reach.WARM:
        return _(
            "Warm handover: while the youth's chat is open, you can join it to introduce "
            "yourself. You see the chat from the moment you join, never what was said before."
        )
    if reach == Reach.CONTACT:
        return _(
            "You contact the youth. Their contact details are shown to the partner who "
            "accepts, and only to them."
        )
    return _("The youth comes to your service and shows a handover code.")


def youth_facts(profile, handover_ids) -> dict[str, dict]:
    """The youth's alias and the conversation of handovers this partner may already see (the
    partner cards carry neither). Called only after the access check."""
    rows = Handover.objects.filter(id__in=handover_ids, service_id=profile.service_id).values(
        "id", "youth__alias", "conversation_id"
    )
    return {
        str(row["id"]): {"alias": row["youth__alias"], "conversation_id": row["conversation_id"]}
        for row in rows
    }


def card_view(card: dict, facts: dict) -> dict:
    """A partner card (selectors.partner_card) with labels and datetimes for the template."""
    answer = card.get("answer") or {}
    return {
        **card,
        "alias": facts.get("alias") or "",
        "conversation_id": facts.get("conversation_id"),
        "state_label": _label(Handover.State, card["state"]),
        "reach_label": _label(Reach, card.get("reach")),
        "age_band_label": _label(AgeBand, card.get("age_band")),
        "sent_at": _when(card.get("sent_at")),
        "reply_expected_by": _when(card.get("reply_expected_by")),
        "met_at": _when(card.get("met_at")),
        "consent_expires_at": _when(card.get("consent_expires_at")),
        "answer": {
            **answer,
            "at": _when(answer.get("at")),
            "first_meeting_at": _when(answer.get("first_meeting_at")),
        }
        if answer
        else None,
    }


def meeting_time(value) -> datetime:
    """An `<input type="datetime-local">` value ("2026-03-03T14:00"), in Europe/Oslo
    (settings.TIME_ZONE)."""
    wrong = ServiceError("bad_time", _("Give the first meeting's date and time."))
    try:
        when = datetime.fromisoformat(str(value or "").strip())
    except ValueError:
        raise wrong from None
    if timezone.is_aware(when):
        return when
    return timezone.make_aware(when, ZoneInfo(settings.TIME_ZONE))


def service_choice(value):
    """The optional alternative service of a decline: a directory id, or None."""
    value = str(value or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ServiceError("bad_service", _("There is no such service in the directory."))
    return int(value)


def local_input_value(value: datetime) -> str:
    return timezone.localtime(value, ZoneInfo(settings.TIME_ZONE)).strftime("%Y-%m-%dT%H:%M")


# -- the inbox -------------------------------------------------------------------------------


def inbox_context(request, **extra) -> dict:
    profile = request.partner
    cards = selectors.partner_inbox(request.user)
    facts = youth_facts(profile, [card["id"] for card in cards])
    consultations = selectors.consultations_for_partner(request.user)
    # Unanswered first, newest first within each group.
    unanswered = [c for c in consultations if not c["answered"]]
    answered = [c for c in consultations if c["answered"]]
    for group in (unanswered, answered):
        group.sort(key=lambda c: c["created_at"], reverse=True)
    return {
        "profile": profile,
        "cards": [card_view(card, facts.get(card["id"], {})) for card in cards],
        "consultations": [
            {
                **c,
                "created_at": _when(c["created_at"]),
                "answered_at": _when(c["answered_at"]),
            }
            for c in unanswered + answered
        ],
        **extra,
    }


@require_GET
@partner_required
def inbox(request):
    return render(request, "frontend/partner_inbox.html", inbox_context(request))


@require_POST
@partner_required
def code_lookup(request):
    """The youth shows a handover code at the desk: the handover (an audited read, via=code)
    if it is addressed to this service and the consent allows it."""
    code = request.POST.get("code", "")
    try:
        detail = services.handover_by_code(request.user, code)
    except ServiceError as exc:
        status = {"rate_limited": 429, "not_allowed": 403}.get(exc.code, 400)
        context = inbox_context(request, code_error=exc.message, code_value=code.strip()[:20])
        return render(request, "frontend/partner_inbox.html", context, status=status)
    return render(
        request,
        "frontend/partner_handover.html",
        handover_context(request, detail["handover"]["id"], detail=detail, via_code=True),
    )


@require_POST
@partner_required
def consultation_answer(request, consultation_id):
    answer = request.POST.get("answer", "")
    try:
        services.consultation_answer(
            user=request.user, consultation_id=consultation_id, answer=answer
        )
    except ServiceError as exc:
        context = inbox_context(
            request,
            consultation_error={"id": str(consultation_id), "message": exc.message},
            consultation_value=answer,
        )
        if not any(c["id"] == str(consultation_id) for c in context["consultations"]):
            context["consultation_error_general"] = exc.message
        return render(request, "frontend/partner_inbox.html", context, status=400)
    messages.success(request, _("Your answer was sent to the staff member who asked."))
    return see_other(reverse("partner-inbox") + f"#consultation-{consultation_id}")


# -- one handover ----------------------------------------------------------------------------


def handover_context(request, handover_id, *, detail: dict, **extra) -> dict:
    profile = request.partner
    handover_id = str(handover_id)
    facts = youth_facts(profile, [handover_id]).get(handover_id, {})
    card = card_view(detail["handover"], facts)
    may_join = (
        card["reach"] == Reach.WARM
        and card["conversation_id"] is not None
        and selectors.partner_may_join(request.user, card["conversation_id"])
    )
    directory = [
        service for service in selectors.service_directory() if service["id"] != profile.service_id
    ]
    shown_forms = {"sent": ("accept", "decline"), "accepted": ("met",)}.get(card["state"], ())
    action_error = extra.get("action_error")
    return {
        "profile": profile,
        "handover_id": handover_id,
        "card": card,
        "detail": detail,
        "not_shared": ", ".join(topic["label"] for topic in detail["not_shared_topics"]),
        "action_error_in_form": bool(action_error) and action_error["form"] in shown_forms,
        "reach_text": reach_explained(card["reach"]),
        "join_url": (reverse("partner-chat", args=[card["conversation_id"]]) if may_join else None),
        "directory": directory,
        "meeting_min": local_input_value(timezone.now()),
        "form": {},
        **extra,
    }


def render_handover(request, handover_id, *, status=200, **extra):
    """The detail page (an audited read), or the refusal if this partner may not read it."""
    try:
        detail = selectors.handover_for_partner(request.user, handover_id)
    except ServiceError as exc:
        return render(
            request,
            "frontend/partner_handover.html",
            {"profile": request.partner, "refusal": exc.message},
            status=refusal_status(exc),
        )
    return render(
        request,
        "frontend/partner_handover.html",
        handover_context(request, handover_id, detail=detail, **extra),
        status=status,
    )


@require_GET
@partner_required
def handover(request, handover_id):
    return render_handover(request, handover_id)


@require_GET
@partner_required
def handover_status(request, handover_id):
    """`{id, state, visible, message}` for the open detail page (partnerhandover.js): once the
    partner may no longer read the handover (withdrawn, expired), the page replaces the
    summary with `message` without waiting for a reload. No content, so no audit."""
    try:
        status = selectors.partner_handover_state(request.user, handover_id)
    except ServiceError as exc:
        return JsonResponse(
            {"visible": False, "code": exc.code, "message": exc.message},
            status=refusal_status(exc),
        )
    return JsonResponse(status)


def answer_view(form_name: str, action, confirmation, *, back_to_inbox: bool = False):
    """A POST that changes the handover: success → 303 back to the page with a confirmation
    (to the inbox when the handover is no longer the partner's to read: after a decline);
    ServiceError → the page again with the message (400), nothing changed."""

    @require_POST
    @partner_required
    def view(request, handover_id):
        try:
            action(request, handover_id)
        except ServiceError as exc:
            return render_handover(
                request,
                handover_id,
                status=400,
                action_error={"form": form_name, "message": exc.message},
                form=request.POST.dict(),
            )
        messages.success(request, confirmation())
        if back_to_inbox:
            return see_other(reverse("partner-inbox"))
        return see_other(reverse("partner-handover", args=[handover_id]))

    return view


def _accept(request, handover_id):
    services.handover_accept(
        user=request.user,
        handover_id=handover_id,
        first_meeting_at=meeting_time(request.POST.get("first_meeting_at")),
        where=request.POST.get("where", ""),
        who=request.POST.get("who", ""),
    )


def _decline(request, handover_id):
    services.handover_decline(
        user=request.user,
        handover_id=handover_id,
        reason=request.POST.get("reason", ""),
        alternative=request.POST.get("alternative", ""),
        alternative_service=service_choice(request.POST.get("alternative_service")),
    )


def _met(request, handover_id):
    services.handover_met(user=request.user, handover_id=handover_id)


accept = answer_view(
    "accept",
    _accept,
    lambda: _("You accepted the handover. The youth and the staff member are told."),
)
decline = answer_view(
    "decline",
    _decline,
    lambda: _("You declined the handover. The staff member gets your reason and your alternative."),
    back_to_inbox=True,
)
met = answer_view("met", _met, lambda: _("Marked: the first meeting was held."))


# -- the warm handover chat ------------------------------------------------------------------


@require_GET
@partner_required
def chat(request, conversation_id):
    """The youth's chat, for a warm handover to this partner's service (while the consent
    holds and the chat is open); the socket (/ws/partner/) checks the same again."""
    joinable = selectors.partner_joinable(request.user, conversation_id)
    if not joinable:
        return render(
            request,
            "frontend/partner_chat.html",
            {
                "profile": request.partner,
                "refusal": _(
                    "You cannot join this chat: there is no warm handover to you with a "
                    "valid consent, or the chat has ended."
                ),
            },
            status=403,
        )
    alias = (
        Conversation.objects.filter(id=conversation_id)
        .values_list("youth__alias", flat=True)
        .first()
    )
    strings = {
        "status": {
            "connecting": _("Connecting …"),
            "online": _("Online"),
            "offline": _("Offline – reconnecting …"),
            "unauthorized": _("Logged out"),
        },
        "you": _("You"),
        "read": _("Read"),
        "typing": _("{name} is typing …"),
        "staff": _("Staff"),
        "youth": _("The youth"),
        "joined": _("{name} ({service}) has joined the chat."),
        "ended": _("The chat has ended."),
        "passed": _(
            "{staff} has left the chat. You continue it with the youth: end it when you are done."
        ),
        "leading": _("You lead this chat now: end it when you are done."),
        "end_confirm": _("End the chat for the youth too?"),
        # By the `closed` frame's reason (handover.selectors.closed_reason, and passed on).
        "closed": {
            "consent": _("The youth has withdrawn consent. This conversation is closed for you."),
            "expired": _("The youth's consent has run out. This conversation is closed for you."),
            "declined": _(
                "Your service declined the handover. This conversation is closed for you."
            ),
            "passed_to_another_service": _(
                "The chat was passed to another service. This conversation is closed for you."
            ),
            "closed": _("This conversation is closed for you."),
        },
        "refused": _("You cannot join this chat now."),
        "too_long": _("The message is too long."),
        "error": _("Something went wrong. Try again."),
    }
    return render(
        request,
        "frontend/partner_chat.html",
        {
            "profile": request.partner,
            "conversation_id": str(conversation_id),
            "handover_id": str(joinable[0].id),
            "alias": alias or "",
            "max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS,
            "strings": strings,
        },
    )
