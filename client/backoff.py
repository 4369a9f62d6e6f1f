"""Waiting before a retry: capped exponential backoff with full jitter, bounded by a deadline.

Used wherever the SDK retries a refusal that changed nothing (a 429 from the NameNode's rate
limit, a 503 from a busy DataNode, start-up safe mode). Full jitter (a delay drawn uniformly
from [0, window]) rather than a fixed or equal-jitter wait: clients refused at the same moment
come back spread out instead of as the same burst again. The window doubles per attempt up to
`cap_s`; a server's `Retry-After` hint widens it (never beyond the cap), so a client waits about
as long as the server asked on average without all of them returning at that instant.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff", "RetryBudget"]


@dataclass(frozen=True)
class Backoff:
    """The delay schedule: window = min(cap_s, max(hint, base_s * 2**attempt)), delay ~ U(0, window)."""

    base_s: float = 0.05
    cap_s: float = 2.0
    #: Drawn from per delay; tests pass a seeded or fake one.
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False, repr=False)

    def window(self, attempt: int, hint_s: float | None = None) -> float:
        """The longest delay of retry number `attempt` (0 for the first retry)."""
        grown = math.ldexp(self.base_s, min(attempt, 32))  # base_s * 2**attempt
        return min(self.cap_s, max(grown, hint_s or 0.0))

    def delay(self, attempt: int, hint_s: float | None = None) -> float:
        """A delay for retry number `attempt`, drawn from [0, window]."""
        return self.uniform(0.0, self.window(attempt, hint_s))


class RetryBudget:
    """One operation's retries: the attempt count and a deadline on the event loop's clock.

    `await budget.wait(hint)` sleeps the next jittered delay and returns True, or returns False
    at once when that sleep would end past the deadline (the caller then raises its error)."""

    def __init__(self, deadline_s: float, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._loop = asyncio.get_running_loop()
        self.deadline = self._loop.time() + deadline_s
        self.attempt = 0

    async def wait(self, hint_s: float | None = None) -> bool:
        delay = self.backoff.delay(self.attempt, hint_s)
        if self._loop.time() + delay > self.deadline:
            return False
        self.attempt += 1
        await asyncio.sleep(delay)
        return True

    def reset(self) -> None:
        """Progress was made: the next refusal starts from the smallest window again."""
        self.attempt = 0
