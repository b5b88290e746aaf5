"""Rate limits per token: a token bucket each (`rate` requests a second, bursts of `burst`).

Decision: 50 requests/s sustained with bursts of 100, per token. A person in the browser
makes a few requests a second at most (a session switch is ~6); a script that reads in a loop
is slowed, not refused outright. A stream (SSE, terminal) counts once, when it opens. The
buckets live in the server's memory: several servers would each allow that much.
"""

from __future__ import annotations

import threading
import time

import branchwork as bw

DEFAULT_RATE = 50.0
DEFAULT_BURST = 100.0
_FORGET_AFTER_S = 600.0


class RateLimiter:
    def __init__(self, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, key: str) -> None:
        """Count one request of `key`; `RateLimited` (with when to retry) when over."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
                raise bw.RateLimited(
                    f"too many requests with this token (over {self.rate:.0f}/s); retry in "
                    f"{wait:.1f} s, or spread the load over several tokens",
                    retry_after=wait,
                )
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 10_000:
                self._forget(now)

    def _forget(self, now: float) -> None:
        for key, (_, when) in list(self._buckets.items()):
            if now - when > _FORGET_AFTER_S:
                del self._buckets[key]
