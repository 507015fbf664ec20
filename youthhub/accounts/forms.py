from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import throttle, twofactor


def locked_error(username: str) -> ValidationError:
    return ValidationError(
        _(
            "Too many failed attempts for this username. It is locked for {minutes} min; try again then, or ask an administrator."
        ).format(minutes=throttle.locked_minutes(username)),
        code="locked",
    )


def busy_error() -> ValidationError:
    return ValidationError(
        _("Too many login attempts right now. Wait a minute and try again."), code="busy"
    )


class LoginForm(AuthenticationForm):
    """Django's login form, refusing a locked username (before looking at the password) and
    attempts beyond the service-wide limit. Failures are counted by accounts.signals."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": gettext_lazy("Your username and password did not match. Try again."),
        "inactive": gettext_lazy("Your username and password did not match. Try again."),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        if username and self.cleaned_data.get("password"):
            if throttle.locked_seconds(username):
                raise locked_error(username)
            if not throttle.attempt_allowed():
                raise busy_error()
        return super().clean()

    def refused_for_load(self) -> bool:
        """Refused by the lock or the rate limit (HTTP 429), not by a wrong password."""
        return any(
            error.code in ("locked", "busy")
            for error in self.errors.as_data().get(NON_FIELD_ERRORS, [])
        )


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("6-digit code"),
        max_length=16,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "size": 8,
            }
        ),
    )

    def clean_code(self):
        code = twofactor.normalise(self.cleaned_data["code"])
        if not twofactor.CODE.fullmatch(code):
            raise ValidationError(_("Enter the 6 digits your app shows."), code="format")
        return code
