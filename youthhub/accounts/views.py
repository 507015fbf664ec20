"""The login steps: password (Django's LoginView with the lock), then the second factor (a
code from the authenticator app), or, the first time, enrolling the app."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from . import throttle, twofactor
from .forms import CodeForm, LoginForm, busy_error, locked_error
from .middleware import two_factor_exempt


def next_url(request) -> str:
    """Where to go after logging in: a safe `next`, else LOGIN_REDIRECT_URL."""
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return settings.LOGIN_REDIRECT_URL


def step_url(name: str, target: str) -> str:
    return reverse(name) + "?" + urlencode({REDIRECT_FIELD_NAME: target})


class LoginView(auth_views.LoginView):
    template_name = "frontend/login.html"
    authentication_form = LoginForm

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and not twofactor.passes(user):
            # The password was given already: on to the code.
            return redirect(step_url("staff-login-code", next_url(request)))
        return super().dispatch(request, *args, **kwargs)

    def form_invalid(self, form):
        status = 429 if form.refused_for_load() else 200
        return self.render_to_response(self.get_context_data(form=form), status=status)

    def form_valid(self, form):
        user = form.get_user()
        auth_login(self.request, user)
        if twofactor.required():
            return redirect(step_url("staff-login-code", self.get_success_url()))
        throttle.clear_failures(user.get_username())
        return redirect(self.get_success_url())


login_view = two_factor_exempt(LoginView.as_view())
logout_view = two_factor_exempt(auth_views.LogoutView.as_view())


def _locked_out(request, username: str):
    """The username got locked during the code step: end the half-done login."""
    message = locked_error(username).messages[0]
    logout(request)
    messages.error(request, message)
    return redirect("staff-login")


def _check_code(request, form: CodeForm, device, *, enrolling: bool):
    """A code was posted: the response to send, or the status to show the form (with its
    errors) again with. Wrong codes count towards the username's lock, like wrong passwords."""
    user = request.user
    username = user.get_username()
    if throttle.locked_seconds(username):
        return _locked_out(request, username)
    if not throttle.attempt_allowed():
        form.add_error(None, busy_error())
        return 429
    if not form.is_valid():
        return 200
    wait = twofactor.wait_seconds(device)
    if wait:
        form.add_error(
            None,
            _("Too many wrong codes in a row. Wait {seconds} seconds and try again.").format(
                seconds=wait
            ),
        )
        return 429
    if not twofactor.verify(user, device, form.cleaned_data["code"]):
        if throttle.record_failure(username):
            return _locked_out(request, username)
        form.add_error(
            "code",
            _(
                "That code did not work. Use the newest code in the app, and check that the phone's clock is right."
            ),
        )
        return 200
    device.refresh_from_db()
    if enrolling:
        twofactor.confirm(user, device)
    otp_login(request, device)
    request.session.cycle_key()  # a new session id for the fully logged-in session
    throttle.clear_failures(username)
    return redirect(next_url(request))


@two_factor_exempt
@sensitive_post_parameters("code")
@never_cache
def code(request):
    """Step 2: the 6-digit code from the person's authenticator app."""
    user = request.user
    if not user.is_authenticated:
        return redirect("staff-login")
    target = next_url(request)
    if twofactor.passes(user):
        return redirect(target)
    device = twofactor.confirmed_device(user)
    if device is None:
        return redirect(step_url("staff-login-setup", target))
    form = CodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = _check_code(request, form, device, enrolling=False)
        if not isinstance(status, int):
            return status
    return render(
        request,
        "frontend/login_code.html",
        {"form": form, "next": target, "username": user.get_username()},
        status=status,
    )


@two_factor_exempt
@sensitive_post_parameters("code")
@never_cache
def setup(request):
    """Step 2 the first time: add youthhub to an authenticator app, confirm with a code."""
    user = request.user
    if not user.is_authenticated:
        return redirect("staff-login")
    target = next_url(request)
    if twofactor.passes(user):
        return redirect(target)
    if twofactor.confirmed_device(user) is not None:
        # Enrolled already: a password alone never replaces the second factor.
        return redirect(step_url("staff-login-code", target))
    device = twofactor.enrolment_device(user)
    form = CodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = _check_code(request, form, device, enrolling=True)
        if not isinstance(status, int):
            return status
    return render(
        request,
        "frontend/login_setup.html",
        {
            "form": form,
            "next": target,
            "username": user.get_username(),
            "qr_svg": twofactor.qr_svg(device),
            "secret": twofactor.secret_text(device),
            "issuer": settings.OTP_TOTP_ISSUER,
        },
        status=status,
    )
