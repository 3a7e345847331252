"""The manager as a part of the engine (``engine.runner.Engine``): built from the engine's market
states, market providers (their candles) and exchanges, started after them, stopped before them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from nof0.engine.exchange.provider import Exchange
from nof0.engine.leases import LeaseTable
from nof0.engine.market.provider import MarketProvider
from nof0.engine.market.state import MarketState
from nof0.engine.traders.manager import Manager
from nof0.ingest.service import IngestService
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["traders_running"]

log = get_logger("nof0.engine.traders")


@contextlib.asynccontextmanager
async def traders_running(rt: Runtime, *, markets: Mapping[str, MarketState], providers: Mapping[str, MarketProvider],
                          exchanges: Mapping[str, Exchange], ingest: IngestService | None = None,
                          leases: LeaseTable | None = None) -> AsyncIterator[Manager]:
    """Start the manager (registration, state, reconciliation, pending cycles), run its loop until the
    block ends. A manager that cannot start is logged; the rest of the process goes on."""
    manager = Manager(rt, exchanges=dict(exchanges), markets=dict(markets),
                      candles={name: p.candles for name, p in providers.items()}, ingest=ingest, leases=leases)
    stop = asyncio.Event()
    task = None
    try:
        await manager.start()
        task = asyncio.create_task(manager.run(stop), name="traders")
    except Exception as exc:  # noqa: BLE001 - the API and the feeds keep serving
        log.error("the traders' manager did not start", error=repr(exc))
    try:
        yield manager
    finally:
        stop.set()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
