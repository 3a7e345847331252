"""What one API process knows about a server it reads (Redis, Postgres): up, or down since when.

While a server is known down the read path does not wait for it: Redis is skipped and Postgres
misses answer 503 at once, and one call per ``retry_ms`` tries the server again (for Postgres a
single probe at a time, so no request queues behind a dead server). The outage is logged once when
it starts and once when it ends, never per request.
"""

from __future__ import annotations

from nof0.kernel.clock import Clock
from nof0.obs.logging import get_logger

__all__ = ["Outage"]

log = get_logger("nof0.api.outage")


class Outage:
    def __init__(self, server: str, clock: Clock, retry_ms: int) -> None:
        self.server = server
        self.clock = clock
        self.retry_ms = retry_ms
        self.down_since_ms: int | None = None
        self.retry_at_ms = 0
        self.probing = False  # a call is trying the server while it is known down

    @property
    def down(self) -> bool:
        return self.down_since_ms is not None

    def usable(self, now_ms: int | None = None) -> bool:
        """False while known down and inside the retry window: callers skip the server."""
        return (self.clock.now_ms() if now_ms is None else now_ms) >= self.retry_at_ms

    def failed(self, error: BaseException, **context: object) -> None:
        """A call failed: open (or extend) the retry window; log only when the outage starts."""
        now = self.clock.now_ms()
        if self.down_since_ms is None:
            self.down_since_ms = now
            log.warning(f"{self.server} unavailable", error=str(error).splitlines()[0] if str(error) else
                        type(error).__name__, retry_every_ms=self.retry_ms, **context)
        self.retry_at_ms = now + self.retry_ms

    def answered(self) -> None:
        """A call succeeded: the outage, if any, is over."""
        if self.down_since_ms is not None:
            # a warning too: it closes the outage the first one opened, at any log level
            log.warning(f"{self.server} available again", down_ms=self.clock.now_ms() - self.down_since_ms)
            self.down_since_ms = None
        self.retry_at_ms = 0
