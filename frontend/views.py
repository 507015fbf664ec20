from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils.translation import gettext as _

from chat.selectors import staff_profile
from youthhub.crisis import CRISIS_LINES


def youth(request):
    strings = {
        "connecting": _("Kobler til …"),
        "online": _("Tilkoblet"),
        "offline": _("Frakoblet – prøver igjen …"),
        "queued": _("Du er nummer {position} i køen. Noen svarer deg så snart de kan."),
        "assigned": _("{name} er her og leser det du skriver."),
        "ended": _("Samtalen er avsluttet. Takk for at du tok kontakt!"),
        "typing": _("{name} skriver …"),
        "read": _("Lest"),
        "you": _("Du"),
        "too_long": _("Meldingen er for lang."),
        "error": _("Noe gikk galt. Prøv igjen."),
        "session_gone": _("Økta di er ikke gyldig lenger. Start en ny samtale."),
    }
    return render(
        request,
        "frontend/youth.html",
        {
            "strings": strings,
            "crisis_lines": CRISIS_LINES,
            "max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS,
        },
    )


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
