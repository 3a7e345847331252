"""Waiting, for the market providers and the feed: an injected ``sleep`` (tests pass one that advances a
simulated clock instead of waiting) and exponential backoff with jitter for reconnects and retries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from nof0.kernel.clock import FixedClock

__all__ = ["Sleep", "Backoff", "advancing_sleep"]

Sleep = Callable[[float], Awaitable[None]]


class Backoff:
    """Delays ``base * 2**n`` capped at ``cap``, each drawn in its upper half (``d/2 + U(0, d/2)``): clients
    that lost the venue together do not come back together, and a delay never collapses to zero."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self.base_s, self.cap_s = base_s, max(cap_s, base_s)
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap_s, self.base_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return delay / 2 + self._rng.uniform(0, delay / 2)

    def reset(self) -> None:
        self.attempt = 0


def advancing_sleep(clock: FixedClock) -> Sleep:
    """A sleep for a simulated clock: moves ``clock`` forward by the delay and lets other tasks run."""

    async def sleep(seconds: float) -> None:
        clock.advance(max(0, round(seconds * 1000)))
        await asyncio.sleep(0)

    return sleep
