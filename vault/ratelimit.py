"""A token bucket per key (an address, a claimed account): how refused attempts are limited.

**In-process only.** Each server process keeps its own buckets, so N processes behind one
address allow N times the budget; a multi-process deployment needs a shared limiter (a reverse
proxy's, or one in a shared store) in front of the vault (docs/access.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 10_000  # buckets kept; full ones are dropped first when there are more


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """`burst` attempts at once per client, refilled at `per_minute`; thread-safe.

    Only failures `spend`; `retry_after` tells whether a client must wait before it is heard.
    """

    def __init__(
        self,
        burst: int,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_minute <= 0:
            raise ValueError("burst must be at least 1 and per_minute positive")
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, client: str, now: float) -> _Bucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            return _Bucket(self.burst, now)
        tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        return _Bucket(tokens, now)

    def retry_after(self, client: str) -> float | None:
        """Return the seconds `client` must wait before its next attempt, or None if it may."""
        with self._lock:
            bucket = self._refilled(client, self._clock())
            if bucket.tokens >= 1.0:
                return None
            return (1.0 - bucket.tokens) / self.rate

    def spend(self, client: str) -> None:
        """Count one failure of `client` against its budget."""
        with self._lock:
            now = self._clock()
            bucket = self._refilled(client, now)
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            self._buckets[client] = bucket
            if len(self._buckets) > MAX_CLIENTS:
                self._prune(now)

    def _prune(self, now: float) -> None:
        # Full buckets carry no memory of failures; drop them, then the oldest if still too many.
        for key in [k for k in self._buckets if self._refilled(k, now).tokens >= self.burst]:
            del self._buckets[key]
        while len(self._buckets) > MAX_CLIENTS:
            del self._buckets[min(self._buckets, key=lambda k: self._buckets[k].stamp)]
