"""The HTTP side of the staff login rules (after AuthenticationMiddleware, django-otp's
OTPMiddleware and MessageMiddleware):

1. An expired or idle login is logged out before the view runs, with a note for the login
   page.
2. Activity is recorded (at most once a minute), except for background polling.
3. While two-factor is required and the session has not given a code, every view except the
   login steps (marked with `two_factor_exempt`) sees an anonymous visitor: staff, partner and
   supervisor pages, the admin and the APIs all refuse as they refuse anyone not logged in.
"""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import AnonymousUser

from . import sessions, twofactor

# Requests a page sends by itself (the statistics page's live panel): not activity.
BACKGROUND_URL_NAMES = frozenset({"stats-now"})


def two_factor_exempt(view):
    """Mark a view that an unverified (password-only) session may use: the login steps."""
    view.two_factor_exempt = True
    return view


async def _anonymous():
    return AnonymousUser()


class StaffSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        now = sessions.clock()
        why = sessions.expired(request.session, now)
        if why:
            logout(request)  # closes this session's sockets too (accounts.signals)
            if hasattr(request, "_messages"):
                messages.info(request, sessions.explain(why))
            return None
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name not in BACKGROUND_URL_NAMES:
            sessions.touch(request.session, now)
        if not twofactor.passes(user) and not getattr(view_func, "two_factor_exempt", False):
            request.user = AnonymousUser()
            request.auser = _anonymous
        return None
