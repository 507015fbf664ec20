"""How long a staff, partner or supervisor login lasts.

- At most `SESSION_COOKIE_AGE` (`YOUTHHUB_STAFF_SESSION_SECONDS`, a shift) after the password
  was accepted, however active the user is.
- At most `YOUTHHUB_STAFF_IDLE_SECONDS` without activity: a page request, or a frame a person
  sends on the dashboard's or partner chat's WebSocket (not the automatic pings, hellos, syncs
  and shift refreshes, and not the statistics page's live panel polling).
- The session cookie ends when the browser closes (`SESSION_EXPIRE_AT_BROWSER_CLOSE`).

The two times live in the session itself (seconds since the epoch), so HTTP and WebSocket
apply the same rule.
"""

import hashlib
import time

from django.conf import settings
from django.utils.translation import gettext as _

AUTH_AT = "yh_auth_at"  # when the password was accepted
SEEN_AT = "yh_seen_at"  # last activity (written at most once a minute)
TOUCH_EVERY = 60

clock = time.time  # tests move it forward


def start(session, now: float | None = None) -> None:
    """A new login (user_logged_in)."""
    now = int(clock() if now is None else now)
    session[AUTH_AT] = now
    session[SEEN_AT] = now


def expired(session, now: float) -> str | None:
    """None while the login is fresh; else "expired" (too old) or "idle" (unused too long).

    A session from before these keys existed gets them on its next touch."""
    auth_at = session.get(AUTH_AT)
    if auth_at is not None and now - auth_at > settings.SESSION_COOKIE_AGE:
        return "expired"
    idle = settings.YOUTHHUB_STAFF_IDLE_SECONDS
    seen_at = session.get(SEEN_AT)
    if idle > 0 and seen_at is not None and now - seen_at > idle:
        return "idle"
    return None


def touch(session, now: float) -> bool:
    """Record activity (at most once a minute, so most requests write nothing)."""
    changed = False
    if session.get(AUTH_AT) is None:
        session[AUTH_AT] = int(now)
        changed = True
    seen_at = session.get(SEEN_AT)
    if changed or seen_at is None or now - seen_at >= TOUCH_EVERY:
        session[SEEN_AT] = int(now)
        changed = True
    return changed


def explain(why: str) -> str:
    if why == "idle":
        minutes = max(1, settings.YOUTHHUB_STAFF_IDLE_SECONDS // 60)
        return _("You were logged out after {minutes} minutes without activity.").format(
            minutes=minutes
        )
    return _("Your login has expired. Log in again.")


def tag(session_key: str | None) -> str:
    """A short, one-way name for a session: a logout closes only that session's sockets,
    and no session key travels through the channel layer."""
    if not session_key:
        return ""
    return hashlib.sha256(f"yh-session:{session_key}".encode()).hexdigest()[:24]
