import hashlib
import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chat.models import ABOUT_QUESTIONS, BLOCK_DURATIONS, BLOCK_REASONS, TOPICS
from chat.selectors import staff_profile
from dropin.models import Site
from youthhub.crisis import CRISIS_LINES
from youthhub.handover.models import REQUIRED_SECTIONS, SUMMARY_SECTIONS
from youthhub.handover.selectors import STAFF_GUIDANCE, consent_wording, partner_profile
from youthhub.staff.models import INTERESTS, YOUTH_ROLE_LABELS, Role, Status

# Every string a page's JavaScript shows comes from here (English msgids, translated through
# frontend/locale) and reaches the script as a json_script data block: no text in the JS files.


def block_duration_labels() -> dict:
    """How long staff can block an anonymous identity (chat.models.BLOCK_DURATIONS)."""
    labels = {"1h": _("1 hour"), "24h": _("24 hours"), "7d": _("7 days")}
    return {key: labels[key] for key in BLOCK_DURATIONS}


def youth_role_labels() -> dict:
    return {str(role): label for role, label in YOUTH_ROLE_LABELS.items()}


# The four statements of the family-meeting evaluation (Møreforsking Molde), 0–5, in youth words.
FEEDBACK_STATEMENTS = {
    "understood": gettext_lazy("I felt understood and respected"),
    "talked_about": gettext_lazy("We talked about what I wanted to talk about"),
    "form": gettext_lazy("The way we talked suited me"),
    "useful": gettext_lazy("All in all, the chat was useful for me"),
}


def about_questions() -> list[tuple[str, str, list]]:
    """The optional questions (chat.models.ABOUT_QUESTIONS) as the youth page asks them."""
    asked = {
        "age": _("How old are you?"),
        "gender": _("Are you a …"),
        "heard": _("How did you hear about us?"),
    }
    return [
        (name, asked[name], [(key, str(label)) for key, label in choices.items()])
        for name, choices in ABOUT_QUESTIONS.items()
    ]


@never_cache  # no copy of the page (or of a chat in it) in the HTTP cache or bfcache
def youth(request, site=None):
    strings = {
        "connecting": _("Connecting …"),
        "online": _("Online"),
        "offline": _("Offline – trying again …"),
        "queued": _(
            "You are number {position} in the queue. Someone will answer you as soon as they can."
        ),
        "queued_for": _("You are waiting for {name}. You are number {position} in the queue."),
        "eta_now": _("Someone can answer now."),
        "eta_range": _("Waiting time: about {low}–{high} min."),
        "eta_long": _("Waiting time: more than an hour."),
        "eta_unknown": _("None of the people you chose are on right now."),
        "closed": _(
            "Nobody is on now. Next time someone is on: {when}. You can write a message now – we will answer when we open, and you will see the answer here."
        ),
        "closed_never": _(
            "Nobody is on now. You can write a message – we will answer when we open."
        ),
        "switch_offer": _(
            "{name} has not answered yet. Would you rather talk to the first person who is free? You keep your place."
        ),
        "called": _("Your turn! Go to {room}. {name} is waiting for you."),
        "called_no_room": _("Your turn! {name} is waiting for you."),
        "called_title": _("Your turn! {ticket}"),
        "ticket": _("Your ticket: {ticket}"),
        "no_show": _(
            "We called your number but could not find you. That is OK – take a new ticket when you are ready."
        ),
        "free_places": _("Free now"),
        "queue_length": _("{n} waiting"),
        "talk_to": _("Talk to {name}"),
        "assigned": _("{name} is here and reads what you write."),
        "joined": _(
            "{name} has joined the chat and can see what you have written, so you don't have to say it again."
        ),
        "talk_again": _("Talk to {name} again"),
        "partner_joined": _(
            "{name} has joined the chat. They can see what is written from now on, not before."
        ),
        # A warm handover's partner continues the chat (the staff member let go).
        "passed": _(
            "{staff} has left the chat. {name} from {service} continues the chat with you."
        ),
        "partner_leads": _("You are chatting with {name} from {service}."),
        "not_on_now": _("{name} is not on right now."),
        "ended": _("The conversation has ended. Thank you for getting in touch!"),
        "typing": _("{name} is typing …"),
        "read": _("Read"),
        "you": _("You"),
        "too_long": _("The message is too long."),
        "error": _("Something went wrong. Try again."),
        "session_gone": _("Your session is no longer valid. Start a new conversation."),
        "blocked_until": _("You can write to us again from {when}."),
        # The consent card's wording is part of each consent's text version (docs/handover.md).
        "consent": consent_wording(),
        "roles": youth_role_labels(),
        "interests": INTERESTS,
    }
    return render(
        request,
        "frontend/youth.html",
        {
            "feedback_statements": FEEDBACK_STATEMENTS.items(),
            "scale": range(6),
            "about_questions": about_questions(),
            "site": site,
            "interests": INTERESTS.items(),
            "strings": strings,
            "crisis_lines": CRISIS_LINES,
            "max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS,
            "quick_exit_url": settings.YOUTHHUB_QUICK_EXIT_URL,
            # What `manage.py purge` keeps (youthhub/retention.py).
            "retention_days": settings.YOUTHHUB_RETENTION_DAYS,
        },
    )


def dropin(request, slug):
    """The drop-in flow on the youth's own phone (the arena's poster QR code points here)."""
    return youth(request, site=get_object_or_404(Site, slug=slug))


def kiosk(request, slug):
    """The arena's tablet: take a ticket, see it, follow it on your phone with a QR code."""
    site = get_object_or_404(Site, slug=slug)
    strings = {
        "take": _("Take a ticket"),
        "your_ticket": _("Your ticket"),
        "follow": _("Follow the queue on your phone: scan the code. Or watch the screen."),
        "position": _("You are number {position} in the queue."),
        "eta_range": _("Waiting time: about {low}–{high} min."),
        "eta_now": _("Someone can see you now."),
        "eta_long": _("Waiting time: more than an hour."),
        "eta_unknown": _("None of the people you chose are here right now."),
        "error": _("Something went wrong. Ask someone who works here."),
        "roles": youth_role_labels(),
    }
    return render(
        request,
        "frontend/kiosk.html",
        {"site": site, "strings": strings, "crisis_lines": CRISIS_LINES},
    )


@login_required
def staff(request):
    if partner_profile(request.user) is not None:  # a partner logging in lands on their inbox
        return redirect("partner-inbox")
    profile = staff_profile(request.user)
    if profile is None:
        raise PermissionDenied("Only staff can open the dashboard.")
    strings = {
        "status": {
            "connecting": _("Connecting …"),
            "online": _("Online"),
            "offline": _("Offline – reconnecting …"),
            "unauthorized": _("Logged out"),
        },
        "title": _("Dashboard – youthhub"),
        "alert_title": _("(!) {who} – youthhub"),
        "crisis_banner": _("{who} says they are not safe right now."),
        # Queue rows
        "first_available": _("first available"),
        "asked_for_you": _("asked for you"),
        "asked_for_name": _("asked for {name}"),
        "asked_for_role": {
            Role.PSYCHOLOGIST.value: _("asked for a psychologist"),
            Role.HEALTH_NURSE.value: _("asked for a nurse"),
            Role.SOCIAL_WORKER.value: _("asked for a social worker"),
            Role.PEER.value: _("asked for a peer"),
            Role.YOUTH_WORKER.value: _("asked for a youth worker"),
            Role.VOLUNTEER.value: _("asked for a volunteer"),
            Role.SPECIALIST.value: _("asked for a specialist"),
        },
        "asked_for_other_role": _("asked for: {role}"),
        "waiting_since": _("{name} · waiting since {time}"),
        "not_safe": _("NOT SAFE"),
        "channel": {"dropin": _("drop-in"), "chat": _("chat")},
        "after_hours": _("left a message while closed"),
        "topics": {key: str(label) for key, label in TOPICS.items()},
        "call": _("Call {ticket}"),
        "take": _("Take {alias}"),
        # Conversation panes
        "chatting_with": _("Chatting with {alias}"),
        "conversation_ended": _("Conversation with {alias} has ended."),
        "called_to_room": _("Called {ticket} to {room}."),
        "called_to_you": _("Called {ticket} to you."),
        "no_show": _("{ticket} did not come."),
        "typing": _("{name} is typing …"),
        "read": _("Read"),
        "you": _("You"),
        "handed_over": _("Handed over to {name}."),
        "passed_to": _("{name} ({service}) continues this chat. You have let go of it."),
        "joined": _("{name} has taken over this conversation."),
        # Tools around a conversation (staffwork.js)
        "work": {
            "notify_new": _("New request in the queue"),
            "notify_crisis": _("Someone is not safe right now"),
            "notify_transfer": _("A colleague wants to hand over a conversation"),
            "to_you": _("you"),
            "transfer_offer": _("{name} from {from} → {to}"),
            "read_and_decide": _("Read and decide"),
            "preview_title": _("{name}, from {from}"),
            "transfer_declined": _(
                "{name} declined the transfer. The conversation stays with you."
            ),
            "transfer_waiting": _("Waiting for {to} to accept. You stay in the chat until then."),
            "transfer_needs": _("Choose whom to hand over to and write a note."),
            "transfer_pick": _("Choose …"),
            "transfer_note": _("transfer note"),
            "colleagues": _("Colleagues on now"),
            "colleague_option": _("{name} ({chats} / {capacity})"),
            "a_role": _("Anyone who is a …"),
            "canned_pick": _("Insert a canned reply …"),
            "notes_button": _("Notes ({n})"),
            "earlier_button": _("Earlier conversations ({n})"),
            "earlier_item": _("{date} · {n} messages"),
            "earlier_title": _("Conversation of {date}"),
            "languages": {"nb": _("Norwegian"), "en": _("English")},
            "partner_joined": _("{name} has joined the chat."),
            "block_confirm": _(
                "Block {alias} for {duration}? The chat ends now, and they cannot start a new one until then."
            ),
            "blocked_until": _("{alias} is blocked until {when}."),
            "block_item": _("{alias} · until {when}"),
            "block_by": _("blocked by {name}"),
            "lift": _("Lift the block"),
            "block_lifted": _("The block on {alias} is lifted."),
            "block_durations": block_duration_labels(),
            "block_reasons": {key: str(label) for key, label in BLOCK_REASONS.items()},
            "handover": {
                "pick_service": _("Choose a service …"),
                "choose_service": _("Choose a service and how it reaches the youth."),
                "service_info": _("{offers} Usually answers within {days} days."),
                "close": _("Close"),
                "button": _("Handover"),
                "button_active": _("Handover ({n})"),
                "overdue": _("No answer yet: past the expected reply time."),
                "first_meeting": _("First meeting: {when}."),
                "not_answered": _("Not answered yet."),
                "revise": _("Change and ask again"),
                "pass": _("Let {name} continue the chat"),
                "passed": _("{name} continues the chat."),
                "joined": _("{name} from the service is in the chat."),
                "youth_answer": {
                    "agree": _("The youth said yes."),
                    "agree_except": _("The youth said yes, with some things left out."),
                    "change": _("The youth asked for changes."),
                    "no": _("The youth said no."),
                },
                "youth_reason": _("In their words: “{reason}”"),
                "guidance": {key: str(text) for key, text in STAFF_GUIDANCE.items()},
                "decline_reason": _("The service's reason: {reason}"),
                "alternative": _("Their alternative for the youth: {alternative}"),
                "alternative_service": _("They suggest: {service}"),
                "states": {
                    "draft": _("draft"),
                    "proposed": _("waiting for the youth's answer"),
                    "changes_requested": _("the youth asked for changes"),
                    "refused": _("the youth said no"),
                    "sent": _("sent, waiting for the service"),
                    "accepted": _("the service said yes"),
                    "declined": _("the service said no (see their alternative)"),
                    "met": _("first meeting held"),
                    "withdrawn": _("the youth withdrew consent"),
                    "expired": _("consent expired"),
                    "closed": _("closed"),
                },
            },
            "roles": {str(role): str(label) for role, label in Role.choices},
            "statuses": {str(status): str(label) for status, label in Status.choices},
        },
    }
    return render(
        request,
        "frontend/staff.html",
        {
            "handover_sections": [(k, str(v)) for k, v in SUMMARY_SECTIONS.items()],
            "handover_required": REQUIRED_SECTIONS,
            "block_durations": list(block_duration_labels().items()),
            "block_reasons": [(k, str(v)) for k, v in BLOCK_REASONS.items()],
            "profile": profile,
            "max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS,
            "strings": strings,
        },
    )


# -- the installable youth app (PWA) ----------------------------------------------------------

# What the service worker keeps for an offline start: the youth page and its static files.
# Nothing here carries conversation content; /api/ and /ws/ are never cached (see sw.js).
SHELL_STATIC = [
    "youthhub/css/app.css",
    "youthhub/js/youth.js",
    "youthhub/js/quickexit.js",
    "youthhub/js/connection.js",
    "youthhub/js/chatview.js",
    "youthhub/js/consent.js",
    "youthhub/js/dom.js",
    "youthhub/js/waittext.js",
    "youthhub/icons/icon.svg",
    "youthhub/icons/icon-192.png",
    "youthhub/icons/icon-512.png",
]
THEME_COLOR = "#1f5f8b"  # --accent in app.css
BACKGROUND_COLOR = "#f6f4ef"  # --bg in app.css


def _shell_version() -> str:
    """Changes whenever a shell file does, so browsers install the new worker (and re-cache)."""
    digest = hashlib.sha256()
    for name in SHELL_STATIC:
        path = finders.find(name)
        digest.update(name.encode())
        if path:
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]


@require_GET
@never_cache
def service_worker(request):
    """The service worker, served from the root so its scope can cover the youth page `/`."""
    shell = [reverse("youth"), reverse("manifest"), *(static(name) for name in SHELL_STATIC)]
    body = render_to_string(
        "frontend/sw.js",
        {"shell_json": json.dumps(shell), "version": _shell_version()},
    )
    response = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    return response


@require_GET
def manifest(request):
    """The web app manifest: a neutral name and icon, nothing that says what the app is for."""
    data = {
        "id": "/",
        "name": "Ung chat",
        "short_name": "Ung chat",
        "start_url": reverse("youth"),
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            {"src": static("youthhub/icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("youthhub/icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                # Full-bleed background, drawing inside the safe zone: fit for masking too.
                "src": static("youthhub/icons/icon-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
            {"src": static("youthhub/icons/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    response = JsonResponse(data, content_type="application/manifest+json")
    response["Cache-Control"] = "public, max-age=3600"
    return response
