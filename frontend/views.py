from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _

from chat.selectors import staff_profile
from dropin.models import Site
from youthhub.crisis import CRISIS_LINES
from youthhub.staff.models import INTERESTS, YOUTH_ROLE_LABELS


def youth(request, site=None):
    strings = {
        "connecting": _("Kobler til …"),
        "online": _("Tilkoblet"),
        "offline": _("Frakoblet – prøver igjen …"),
        "queued": _("Du er nummer {position} i køen. Noen svarer deg så snart de kan."),
        "queued_for": _("Du venter på {name}. Du er nummer {position} i køen."),
        "eta_now": _("Noen kan svare nå."),
        "eta_range": _("Ventetid: ca. {low}–{high} min."),
        "eta_long": _("Ventetid: mer enn en time."),
        "eta_unknown": _("Ingen av dem du har valgt er på akkurat nå."),
        "closed": _(
            "Ingen er på nå. Neste gang noen er på: {when}. Du kan skrive en melding nå – vi svarer når vi åpner, og du ser svaret her."
        ),
        "closed_never": _("Ingen er på nå. Du kan skrive en melding – vi svarer når vi åpner."),
        "switch_offer": _(
            "{name} har ikke fått svart ennå. Vil du heller snakke med den første som er ledig? Du beholder plassen din."
        ),
        "called": _("Din tur! Gå til {room}. {name} venter på deg."),
        "called_no_room": _("Din tur! {name} venter på deg."),
        "called_title": _("Din tur! {ticket}"),
        "ticket": _("Lappen din: {ticket}"),
        "no_show": _(
            "Vi ropte opp nummeret ditt, men fant deg ikke. Det gjør ingenting – ta en ny lapp når du er klar."
        ),
        "free_places": _("Ledig nå"),
        "queue_length": _("{n} venter"),
        "talk_to": _("Snakk med {name}"),
        "assigned": _("{name} er her og leser det du skriver."),
        "ended": _("Samtalen er avsluttet. Takk for at du tok kontakt!"),
        "typing": _("{name} skriver …"),
        "read": _("Lest"),
        "you": _("Du"),
        "too_long": _("Meldingen er for lang."),
        "error": _("Noe gikk galt. Prøv igjen."),
        "session_gone": _("Økta di er ikke gyldig lenger. Start en ny samtale."),
    }
    strings["roles"] = {str(role): label for role, label in YOUTH_ROLE_LABELS.items()}
    strings["interests"] = INTERESTS
    return render(
        request,
        "frontend/youth.html",
        {
            "site": site,
            "interests": INTERESTS.items(),
            "strings": strings,
            "crisis_lines": CRISIS_LINES,
            "max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS,
        },
    )


def dropin(request, slug):
    """The drop-in flow on the youth's own phone (the arena's poster QR code points here)."""
    return youth(request, site=get_object_or_404(Site, slug=slug))


def kiosk(request, slug):
    """The arena's tablet: take a ticket, see it, follow it on your phone with a QR code."""
    site = get_object_or_404(Site, slug=slug)
    strings = {
        "take": _("Ta en lapp"),
        "your_ticket": _("Lappen din"),
        "follow": _("Følg køen på mobilen din: skann koden. Eller følg med på skjermen."),
        "position": _("Du er nummer {position} i køen."),
        "eta_range": _("Ventetid: ca. {low}–{high} min."),
        "eta_now": _("Noen kan ta imot deg nå."),
        "eta_long": _("Ventetid: mer enn en time."),
        "eta_unknown": _("Ingen av dem du har valgt er her akkurat nå."),
        "error": _("Noe gikk galt. Spør noen som jobber her."),
        "roles": {str(role): label for role, label in YOUTH_ROLE_LABELS.items()},
    }
    return render(request, "frontend/kiosk.html", {"site": site, "strings": strings})


@login_required
def staff(request):
    profile = staff_profile(request.user)
    if profile is None:
        raise PermissionDenied("Only staff can open the dashboard.")
    return render(
        request,
        "frontend/staff.html",
        {"profile": profile, "max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS},
    )
