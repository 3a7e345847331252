"""``nof0 traders sync`` through the ingestion service: the events of ``traders.sync.trader_events``,
each named by the trader's place in the manager file. Here, above the domains, since a domain module
never imports the service that imports the domains."""

from __future__ import annotations

from nof0.ingest.service import IngestService
from nof0.kernel.report import IngestReport
from nof0.runtime import Runtime
from nof0.traders.sync import trader_events

__all__ = ["sync_traders"]


async def sync_traders(rt: Runtime) -> IngestReport:
    return await IngestService(rt).ingest_located(trader_events(rt.config), source="traders-sync")
