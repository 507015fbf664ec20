"""Rate limits that need no identity: shared fixed-window counters and per-socket buckets.

Nothing here is keyed by an IP address: youthhub never sees one (youthhub.privacy).
"""

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

clock = time.time  # tests pin it, so a window boundary cannot fall inside a test


def allow(key: str, *, limit: int, window_seconds: int, fail_open: bool = False) -> bool:
    """Count one hit on `key` in the current window; False once `limit` is passed.

    Shared by every worker through the cache (Redis in production). When the cache cannot be
    reached, the error goes up (the request fails: right for limits that stop guessing), or
    with `fail_open` the hit is allowed (right for a flood limit that must not stop a chat
    while Redis restarts; the per-socket TokenBucket still applies).
    """
    window = int(clock() // window_seconds)
    name = f"rl:{key}:{window}"
    try:
        cache.add(name, 0, timeout=window_seconds + 1)
        try:
            count = cache.incr(name)
        except ValueError:  # expired between add and incr
            cache.add(name, 1, timeout=window_seconds + 1)
            count = 1
    except Exception as exc:
        if not fail_open:
            raise
        logger.warning("rate-limit counter unavailable (%s): allowed", type(exc).__name__)
        return True
    return count <= limit


class TokenBucket:
    """Per-connection frame limit: `rate` frames a second on average, bursts up to `burst`."""

    def __init__(self, *, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
