"""``nof0 run``'s background publisher of the trades outbox (``nof0.trades.outbox``): a pass at start,
then one every ``RETRY_EVERY_S``, so entries a crashed or Redis-less commit left unpublished reach the
stream once Redis answers again (an outage is logged once, by ``Periodic``).

It also keeps the outbox from growing with the trades: about once a minute it deletes the published
entries older than the last ``ingest.trades_stream_maxlen`` (the stream's own cap, and all that a refill
of an emptied stream reads), at most ``PRUNE_ROWS`` a pass, so a backlog drains over a few minutes. The
trades themselves stay in ``trades``; only their stream entries' copies go."""

from __future__ import annotations

from nof0.jobs.periodic import Periodic
from nof0.runtime import Runtime
from nof0.trades import outbox
from nof0.trades import outbox_repository as repo
from nof0.trades.outbox import RETRY_EVERY_S

__all__ = ["OutboxPublisher"]


PRUNE_EVERY = 60  # passes between two prunes (a minute at the default interval)
PRUNE_ROWS = 10_000


class OutboxPublisher(Periodic):
    name = "outbox_publisher"

    def __init__(self, rt: Runtime, *, every_s: float = RETRY_EVERY_S) -> None:
        super().__init__(every_s)
        self.rt = rt
        self._passes = 0

    async def run_once(self) -> outbox.Published:
        async with self.rt.pool.connection() as conn:
            published = await outbox.publish_pending(self.rt, conn)
            if self._passes % PRUNE_EVERY == 0:
                async with conn.transaction():
                    published.pruned = await repo.prune_published(
                        conn, self.rt.config.root.ingest.trades_stream_maxlen, PRUNE_ROWS)
            self._passes += 1
            return published
