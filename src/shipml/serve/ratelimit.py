"""Per-key token buckets: `burst` requests at once, then `rate_per_s` on average.

The server calls ``check(key)`` once per request (the key's name, or the client address for
requests without a valid key); 0.0 means go ahead, anything else is the wait in seconds until the
next token, which the server turns into HTTP 429 with ``Retry-After: ceil(wait)``. A refused
request takes no token, so a client that keeps retrying is not pushed further back. A second
limiter counts failed logins per client address: ``peek(address)`` (no token taken) refuses a
client over that limit before its key is checked, and each failure takes a token.

Memory stays bounded: a bucket left alone for ``burst / rate_per_s`` seconds is full again, the
same as a bucket never seen, so it is dropped at no cost to accuracy (buckets are kept in
least-recently-used order, so this is amortised O(1) per call). Past `max_keys` live buckets the
least recently used one is dropped too; that key then starts again with a full bucket.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token bucket per key; thread-safe, O(1) per call; `clock` is injectable for tests."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not (isinstance(rate_per_s, (int, float)) and math.isfinite(rate_per_s)) or (
            rate_per_s <= 0
        ):
            raise ValueError(f"rate_per_s must be a positive number, not {rate_per_s!r}")
        if int(burst) != burst or burst < 1:
            raise ValueError(f"burst must be a whole number >= 1, not {burst!r}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, not {max_keys!r}")
        self.rate = float(rate_per_s)
        self.burst = int(burst)
        self.max_keys = int(max_keys)
        self._refill_time = self.burst / self.rate  # an idle bucket is full again after this
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [tokens, time of last update]; least recently used first.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"RateLimiter(rate_per_s={self.rate:g}, burst={self.burst})"

    def __len__(self) -> int:
        """Number of buckets held in memory."""
        return len(self._buckets)

    def check(self, key: str) -> float:
        """Take a token for `key`: 0.0 if allowed, else seconds until a token is available."""
        with self._lock:
            now = self._clock()
            self._drop_idle(now)
            bucket = self._buckets.get(key)
            tokens = self._tokens(bucket, now)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate
            if bucket is None:
                self._buckets[key] = [tokens, now]
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                bucket[0], bucket[1] = tokens, now
                self._buckets.move_to_end(key)
            return wait

    def peek(self, key: str) -> float:
        """Like `check` but takes no token: 0.0 if `key` has one left, else the wait. (The
        server refuses a client over its failed-login limit before checking its key.)"""
        with self._lock:
            tokens = self._tokens(self._buckets.get(key), self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _tokens(self, bucket: list[float] | None, now: float) -> float:
        if bucket is None:
            return float(self.burst)
        elapsed = max(0.0, now - bucket[1])  # tolerate a clock that steps back
        return min(float(self.burst), bucket[0] + elapsed * self.rate)

    def reset(self, key: str | None = None) -> None:
        """Forget one key's bucket (or all of them)."""
        with self._lock:
            if key is None:
                self._buckets.clear()
            else:
                self._buckets.pop(key, None)

    def _drop_idle(self, now: float) -> None:
        # The oldest bucket is the least recently touched: stop at the first one still refilling.
        while self._buckets:
            key, (_, last) = next(iter(self._buckets.items()))
            if now - last < self._refill_time:
                return
            del self._buckets[key]
