"""What a decision cycle costs the engine when many run at once (``CycleResult.cost_ms``).

A cycle's wall time (``engine_ms``) at a tick of 500 traders is mostly the other 499: they share one
event loop and one set of round trips. Its cost is its share of that time: each moment of wall time
is divided evenly among the cycles running at that moment (a cycle waiting for its model's reply is not
running), like a processor shared among its jobs. Summed over a tick's cycles the costs give the wall
time during which at least one cycle ran; a cycle running alone costs its wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SharedClock", "Share"]


@dataclass
class Share:
    seconds: float = 0.0  # the cycle's share of the wall time so far
    since: float | None = None  # the shared clock's reading when it last started running


class SharedClock:
    """A virtual clock that advances by dt / (cycles running) (fair-queueing's virtual time)."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self._now = now
        self._running = 0
        self._virtual = 0.0
        self._at = now()

    def _advance(self) -> float:
        t = self._now()
        if self._running:
            self._virtual += (t - self._at) / self._running
        self._at = t
        return self._virtual

    def start(self, share: Share | None = None) -> Share:
        share = share or Share()
        if share.since is None:
            share.since = self._advance()
            self._running += 1
        return share

    def stop(self, share: Share) -> float:
        """Stops the share's clock (a pause or the end); returns its seconds so far."""
        if share.since is not None:
            share.seconds += self._advance() - share.since
            share.since = None
            self._running -= 1
        return share.seconds
