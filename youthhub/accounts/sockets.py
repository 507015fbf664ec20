"""The login behind a staff or partner WebSocket.

The HTTP middleware checks each request; a socket is checked when it opens
(`SocketLoginMiddleware`, after Channels' AuthMiddleware) and then again while it is open:
on a frame, at most once a minute, it reloads its session (still there, same user, still
active, same password, second factor still valid, not expired or idle). Frames a person sends
count as activity for the idle timeout. An `auth.revoked` event (accounts.signals) closes it
at once.
"""

from importlib import import_module
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser

from . import sessions, twofactor

CHECK_EVERY = 60  # seconds between session checks of an open socket
# Frames the page sends by itself: they do not keep an idle login alive.
PASSIVE_FRAMES = frozenset({"ping", "hello", "sync", "shift"})


def _socket_user(scope):
    user = scope["user"]
    if sessions.expired(scope["session"], sessions.clock()):
        return AnonymousUser()
    twofactor.attach_device(user, scope["session"])
    return user


class SocketLoginMiddleware(BaseMiddleware):
    """Inside AuthMiddlewareStack: an expired or idle session counts as logged out, and the
    user gets `otp_device` / `is_verified()` from the session, as OTPMiddleware does for HTTP.
    The consumers refuse a user who is not verified while two-factor is required."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        user = scope.get("user")
        if user is not None and user.is_authenticated and "session" in scope:
            scope["user"] = await database_sync_to_async(_socket_user)(scope)
        return await super().__call__(scope, receive, send)


class SocketLogin:
    """What a staff or partner socket remembers of the login it was opened with."""

    def __init__(self, scope):
        self.user = scope.get("user") or AnonymousUser()
        session = scope.get("session")
        self.session_key = getattr(session, "session_key", None) if session is not None else None
        self.tag = sessions.tag(self.session_key)
        now = sessions.clock()
        self.checked_at = now
        self.touched_at = now
        self.valid = self.allowed()

    def allowed(self) -> bool:
        """Logged in, and verified with a second factor when that is required."""
        return bool(self.session_key) and twofactor.passes(self.user)

    def concerns(self, frame: dict) -> bool:
        """Whether an `auth.revoked` event is about this socket's login."""
        session = frame.get("session")
        return not session or session == self.tag

    async def still_valid(self, frame_type: str) -> bool:
        if not self.valid:
            return False
        now = sessions.clock()
        active = frame_type not in PASSIVE_FRAMES
        due = now - self.checked_at >= CHECK_EVERY
        touch = active and now - self.touched_at >= sessions.TOUCH_EVERY
        if due or touch:
            self.valid = await database_sync_to_async(self._check)(now, touch)
            self.checked_at = now
            if touch:
                self.touched_at = now
        return self.valid

    def _check(self, now: float, touch: bool) -> bool:
        store = import_module(settings.SESSION_ENGINE).SessionStore(self.session_key)
        user = auth.get_user(SimpleNamespace(session=store))  # hash, backend, is_active
        if store.session_key is None or not user.is_authenticated or user.pk != self.user.pk:
            return False
        if sessions.expired(store, now):
            return False
        twofactor.attach_device(user, store)
        if not twofactor.passes(user):
            return False
        if touch and sessions.touch(store, now):
            try:
                store.save()
            except Exception:  # deleted meanwhile (a logout): the login is gone
                return False
        return True
