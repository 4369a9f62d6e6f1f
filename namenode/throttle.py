"""A token bucket for the bytes of replication work the NameNode hands out.

Copies are handed to DataNodes with their heartbeats; a copy of `n` bytes is handed out
only when the bucket holds tokens, and it takes `n` of them (the bucket may go into
debt for a block larger than its burst). So over any stretch of time the bytes handed
out stay within rate x time + burst, and each copy is also paced by its DataNode at no
more than the rate, which keeps recovery traffic near the configured budget.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: How far back `recent_rate` looks: long enough to smooth over heartbeat-sized handouts.
RATE_WINDOW_S = 60.0


class TokenBucket:
    """`burst_s` of savings at most: copies are handed out on heartbeats, so one heartbeat
    interval's worth lets each handout use the budget without overshooting short recoveries."""

    def __init__(
        self, rate_bytes_per_s: float, burst_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self.burst_s = burst_s
        self._handed_out: deque[tuple[float, int]] = deque()
        self.set_rate(rate_bytes_per_s)

    def set_rate(self, rate_bytes_per_s: float) -> None:
        """Change the budget (0 means unlimited); starts with a full burst."""
        self.rate = rate_bytes_per_s
        self.burst = rate_bytes_per_s * self.burst_s
        self._tokens = self.burst
        self._stamp = self.clock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self, amount: int) -> bool:
        """Spend `amount` bytes if the budget allows now; False means: wait for a later heartbeat."""
        if not self.unlimited:
            self._refill()
            if self._tokens <= 0:
                return False
            self._tokens -= amount  # may go negative: a big block borrows from the future
        self._remember(amount)
        return True

    def recent_rate(self) -> float:
        """Bytes per second handed out over the last `RATE_WINDOW_S` (what the status page shows)."""
        self._forget_old(self.clock())
        return sum(amount for _, amount in self._handed_out) / RATE_WINDOW_S

    def _remember(self, amount: int) -> None:
        now = self.clock()
        self._handed_out.append((now, amount))
        self._forget_old(now)

    def _forget_old(self, now: float) -> None:
        while self._handed_out and self._handed_out[0][0] < now - RATE_WINDOW_S:
            self._handed_out.popleft()
