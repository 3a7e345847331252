"""What a provider leaves out (a malformed frame, a bad price, a symbol the venue does not list) is counted
every time and logged at most once per reason every ``every_s`` seconds, with how many were left out since:
a venue sending garbage a thousand times a second must not flood the log."""

from __future__ import annotations

import time

from nof0.obs.logging import get_logger
from nof0.obs.metrics import Metrics

__all__ = ["SkipLog"]

log = get_logger("nof0.engine.market")


class SkipLog:
    def __init__(self, provider: str, metrics: Metrics | None, *, every_s: float = 10.0) -> None:
        self.provider = provider
        self.metrics = metrics
        self.every_s = every_s
        self.counts: dict[str, int] = {}
        self._last_log: dict[str, float] = {}
        self._since_log: dict[str, int] = {}

    def __call__(self, reason: str, detail: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if self.metrics is not None:
            self.metrics.market_skipped.labels(self.provider, reason).inc()
        self._since_log[reason] = self._since_log.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._last_log.get(reason, -self.every_s) >= self.every_s:
            log.warning("market data skipped", provider=self.provider, reason=reason, detail=detail,
                        skipped_since_last_log=self._since_log[reason])
            self._last_log[reason] = now
            self._since_log[reason] = 0
