"""Rate limits that need no identity: shared fixed-window counters and per-socket buckets.

Nothing here is keyed by an IP address: youthhub never sees one (youthhub.privacy).
"""

import time

from django.core.cache import cache

clock = time.time  # tests pin it, so a window boundary cannot fall inside a test


def allow(key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one hit on `key` in the current window; False once `limit` is passed.

    Shared by every worker through the cache (Redis in production).
    """
    window = int(clock() // window_seconds)
    name = f"rl:{key}:{window}"
    cache.add(name, 0, timeout=window_seconds + 1)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=window_seconds + 1)
        count = 1
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
