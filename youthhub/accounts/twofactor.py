"""TOTP two-factor login with django-otp.

A person logs in with their password; until they also give a code from their authenticator app
(or, the first time, enrol one), the session is "unverified": every page, API and WebSocket
treats them as logged out (youthhub.accounts.middleware). `YOUTHHUB_REQUIRE_2FA` turns the
requirement off for the demo and most tests.
"""

import base64
import functools
import re

import segno
from django.conf import settings
from django.db import transaction
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import verify_token as otp_verify_token
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from youthhub.audit.services import audit_record

CODE = re.compile(r"[0-9]{6}")


def required() -> bool:
    return bool(settings.YOUTHHUB_REQUIRE_2FA)


def passes(user) -> bool:
    """Whether this (logged-in) user may work: verified with a second factor, or not asked
    for one. `user.is_verified` comes from django-otp's middleware (HTTP) or
    `attach_device` (WebSocket); a user without it is not verified."""
    if user is None or not user.is_authenticated:
        return False
    if not required():
        return True
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def _is_verified(user) -> bool:
    return user.otp_device is not None


def attach_device(user, session) -> None:
    """What django_otp.middleware.OTPMiddleware does for a request, for a WebSocket scope:
    `user.otp_device` is the confirmed device of this user that verified this session (else
    None), and `user.is_verified()` says whether there is one."""
    device = None
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if persistent_id:
        device = Device.from_persistent_id(persistent_id)
        if device is not None and (device.user_id != user.pk or not device.confirmed):
            device = None
    user.otp_device = device
    user.is_verified = functools.partial(_is_verified, user)


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def enrolment_device(user) -> TOTPDevice:
    """The device being enrolled: the same secret until it is confirmed (a reload shows the same
    QR code), a new one the first time."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="youthhub", confirmed=False)
    return device


def normalise(code: str) -> str:
    """The digits of a code as typed ("123 456", "123-456")."""
    return re.sub(r"[\s-]", "", code or "")


def wait_seconds(device: TOTPDevice) -> int:
    """Seconds before this device accepts another try (it backs off after wrong codes)."""
    allowed, data = device.verify_is_allowed()
    if allowed:
        return 0
    until = (data or {}).get("locked_until")
    if until is None:
        return 1
    from django.utils import timezone

    return max(1, int((until - timezone.now()).total_seconds() + 0.999))


def verify(user, device: TOTPDevice, code: str) -> bool:
    """Check a code against a device (locked row, throttling, no replay of a used code)."""
    code = normalise(code)
    if not CODE.fullmatch(code):
        return False
    return otp_verify_token(user, device.persistent_id, code) is not None


def confirm(user, device: TOTPDevice) -> TOTPDevice:
    """An enrolment whose first code was right: the device now counts, others go."""
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        audit_record("auth.2fa_enrolled", actor=user, actor_kind=actor_kind(user))
    return device


def reset(user) -> int:
    """Remove every device (a lost phone): the next login enrols again. Open sockets of the
    user close (signals.device_removed)."""
    with transaction.atomic():
        count, _ = TOTPDevice.objects.filter(user=user).delete()
        audit_record("auth.2fa_reset", actor=None, user=user.pk)
    return count


def actor_kind(user) -> str:
    from youthhub.handover.models import PartnerProfile

    return "partner" if PartnerProfile.objects.filter(user=user).exists() else "staff"


def secret_text(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for typing into an app by hand."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG QR code (no script, no style attribute)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, dark="#111", light="#fff")
