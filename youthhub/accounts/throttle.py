"""Login throttling, keyed by username (never by address: youthhub never sees one).

- A username that fails `YOUTHHUB_LOGIN_FAILURES` times (wrong password or wrong code) within
  `YOUTHHUB_LOGIN_LOCK_SECONDS` is locked for `YOUTHHUB_LOGIN_LOCK_SECONDS`: every attempt is
  refused without looking at the password, so a correct guess during the lock tells nothing.
- Every attempt (password or code) also counts against a service-wide limit per minute.

Counters live in the shared cache (Redis in production); usernames are hashed, so the cache
holds no names. Any string is locked the same way, so the lock says nothing about whether an
account exists.
"""

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache

from youthhub.ratelimit import allow

clock = time.time  # tests move it forward


def _key(kind: str, username: str) -> str:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login:{kind}:{digest}"


def locked_seconds(username: str) -> int:
    """Seconds left on this username's lock; 0 when it is not locked."""
    until = cache.get(_key("lock", username))
    if not until:
        return 0
    return max(0, math.ceil(until - clock()))


def locked_minutes(username: str) -> int:
    return max(1, math.ceil(locked_seconds(username) / 60))


def record_failure(username: str) -> bool:
    """Count one failed attempt; True when this one locks the username."""
    if not username:
        return False
    window = settings.YOUTHHUB_LOGIN_LOCK_SECONDS
    key = _key("fail", username)
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        count = 1
    if count < settings.YOUTHHUB_LOGIN_FAILURES:
        return False
    cache.set(_key("lock", username), clock() + window, timeout=window + 60)
    cache.delete(key)
    return True


def clear_failures(username: str) -> None:
    """After a complete login: earlier misses no longer count."""
    cache.delete(_key("fail", username))


def attempt_allowed() -> bool:
    """Count one login attempt against the service-wide limit per minute."""
    return allow("login", limit=settings.YOUTHHUB_LOGINS_PER_MINUTE, window_seconds=60)
