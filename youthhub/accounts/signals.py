"""Logins start the session clock; failed attempts count towards the lock; and a user who
logs out, is deactivated or deleted, changes password or loses their second factor has their
open WebSockets closed (code 4401: the page goes to the login page).

The close travels as an `auth.revoked` frame on `staff_user_group(user id)`, which every staff
and partner socket joins as it connects (chat.consumers). A logout names its session (by a
one-way tag), so only that browser's sockets close; the other causes close every socket of the
user. Note: `QuerySet.update(is_active=False)` sends no signal; such a user's sockets still
close within about a minute, when they next check their session (accounts.sockets).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_otp.plugins.otp_totp.models import TOTPDevice

from chat import events

from . import sessions, throttle

REVOKED = "auth.revoked"


def revoke(user_id, reason: str, session_key: str | None = None) -> None:
    """After the commit, close the user's sockets (only `session_key`'s, when given)."""
    frame = {"type": REVOKED, "reason": reason}
    if session_key:
        frame["session"] = sessions.tag(session_key)
    events.publish_on_commit(events.staff_user_group(user_id), frame)


@receiver(user_logged_in)
def logged_in(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is not None:
        sessions.start(session)


@receiver(user_logged_out)
def logged_out(sender, request, user, **kwargs):
    if user is None:
        return
    session = getattr(request, "session", None)
    revoke(user.pk, "logout", session.session_key if session is not None else None)


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs):
    username = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username")
    if isinstance(username, str):
        throttle.record_failure(username)


@receiver(post_save, sender=get_user_model())
def user_saved(sender, instance, created, **kwargs):
    if created:
        return
    if not instance.is_active:
        revoke(instance.pk, "deactivated")
    elif getattr(instance, "_password", None) is not None:
        # set_password() was called: AbstractBaseUser.save clears _password only after
        # post_save, so this is a password change (a hash upgrade at login is not).
        revoke(instance.pk, "password")


@receiver(post_delete, sender=get_user_model())
def user_deleted(sender, instance, **kwargs):
    revoke(instance.pk, "deleted")


@receiver(post_delete, sender=TOTPDevice)
def device_removed(sender, instance, **kwargs):
    if instance.confirmed:
        revoke(instance.user_id, "two_factor_reset")
