"""``nof0 run``'s background publisher of the trades outbox (``nof0.trades.outbox``): a pass at start,
then one every ``RETRY_EVERY_S``, so entries a crashed or Redis-less commit left unpublished reach the
stream once Redis answers again (an outage is logged once, by ``Periodic``)."""

from __future__ import annotations

from nof0.jobs.periodic import Periodic
from nof0.runtime import Runtime
from nof0.trades import outbox
from nof0.trades.outbox import RETRY_EVERY_S

__all__ = ["OutboxPublisher"]


class OutboxPublisher(Periodic):
    name = "outbox_publisher"

    def __init__(self, rt: Runtime, *, every_s: float = RETRY_EVERY_S) -> None:
        super().__init__(every_s)
        self.rt = rt

    async def run_once(self) -> outbox.Published:
        async with self.rt.pool.connection() as conn:
            return await outbox.publish_pending(self.rt, conn)
