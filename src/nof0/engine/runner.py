"""The engine of one process (engine.md "One process, one clock"): the market feeds, the exchanges and
the traders' manager, built from one ``Runtime``.

``Engine(rt)`` builds a provider, a ``MarketState`` and a ``Feed`` for every market provider a trader of
``manager.yaml`` uses (``markets=`` names them explicitly instead; ``providers=`` hands in providers
already built, e.g. a sim on a test's clock). ``async with engine.running():`` starts everything and
stops it on exit; ``async with engine.feeds_running():`` the feeds alone (``nof0 feed``).

``Engine(rt, shared=True)`` is one of several engine processes on the same arena (``nof0 run --role
engine``, docs/scaling.md): it runs only the traders and the feeds whose Redis lease it holds
(``engine/leases.py``); every write for a held trader carries its fencing token (one ``IngestService``
with the process's ``fences`` for the manager and the exchanges). A provider whose feed runs in another
process is followed from the store (its latest prices and metadata, every second), so this process's
traders and paper accounts see the same marks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping

from nof0.config import Config
from nof0.engine.exchange.factory import build_exchanges
from nof0.engine.exchange.provider import Exchange, ExchangeError
from nof0.engine.exchange.sim.exchange import SimExchange
from nof0.engine.exchange.stored_market import refresh_from_store
from nof0.engine.leases import LeaseTable
from nof0.engine.market.factory import build_market_provider
from nof0.engine.market.feed import Feed, FeedSettings
from nof0.engine.market.provider import MarketProvider
from nof0.engine.market.state import MarketState
from nof0.engine.market.timing import Sleep
from nof0.engine.traders.manager import Manager
from nof0.engine.traders.running import traders_running
from nof0.ingest.service import IngestService
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["Engine", "markets_in_use", "run_engine"]

log = get_logger("nof0.engine")

_FOLLOW_EVERY_S = 1.0  # how often a process reads the marks of a feed another process runs
# a paper account still locked by its previous holder (alive but paused) is retried at the next lease
# tick rather than waited for, so the other traders' cycles go on
_ACCOUNT_WAIT_S = 1.0


def wall_ms() -> int:
    """Leases expire in Redis's real time, so the processes' heartbeats are stamped with it too (not with
    the runtime's clock, which a test or a replay may hold still)."""
    return int(time.time() * 1000)


def markets_in_use(config: Config) -> list[str]:
    """The market providers the traders use, in the order of manager.yaml."""
    return list(dict.fromkeys(t.market_provider for t in config.manager.traders))


class Engine:
    def __init__(self, rt: Runtime, *, markets: Iterable[str] | None = None,
                 providers: Mapping[str, MarketProvider] | None = None, sleep: Sleep = asyncio.sleep,
                 shared: bool = False, owner: str | None = None) -> None:
        self.rt = rt
        self.shared = shared
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        given = dict(providers or {})
        names = list(dict.fromkeys(markets)) if markets is not None else markets_in_use(rt.config) + [
            n for n in given if n not in markets_in_use(rt.config)]
        self.providers: dict[str, MarketProvider] = {
            n: given[n] if n in given else build_market_provider(rt, n, sleep=sleep) for n in names}
        self.markets: dict[str, MarketState] = {n: MarketState(n) for n in names}
        configured = rt.config.market.providers
        self.feeds: dict[str, Feed] = {
            n: Feed(rt, p, self.markets[n],
                    FeedSettings.from_config(configured[n]) if n in configured else FeedSettings(), sleep=sleep)
            for n, p in self.providers.items()}
        # shared: one ingestion service for the traders' writes, holding their fencing tokens
        self.ingest = IngestService(rt, linger_s=0, fences={}) if shared else None
        self.exchanges: dict[str, Exchange] = build_exchanges(rt, self.markets, ingest=self.ingest)
        for exchange in self.exchanges.values():
            if shared and isinstance(exchange, SimExchange):
                exchange.lock_wait_s = _ACCOUNT_WAIT_S
        self.manager: Manager | None = None  # the traders' manager, while ``running``
        self.feeds_held: set[str] = set()  # shared: the providers whose feed runs in this process

    @contextlib.asynccontextmanager
    async def feeds_running(self) -> AsyncIterator["Engine"]:
        """The market feeds, one task each, until the block ends (shared: those whose lease it holds)."""
        stop = asyncio.Event()
        if self.shared:
            tasks = [asyncio.create_task(self._shared_feeds(stop), name="feeds")]
        else:
            tasks = [asyncio.create_task(feed.run(stop), name=f"feed:{name}") for name, feed in self.feeds.items()]
        for task in tasks:
            task.add_done_callback(_report_failure)
        try:
            yield self
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Engine"]:
        """Everything the engine runs: the feeds first (the exchanges read their marks), then the exchanges
        and the traders' manager."""
        leases = LeaseTable(self.rt.redis, self.rt.keys, self.owner, [
            t.id for t in self.rt.config.manager.traders if t.auto_start], now_ms=wall_ms) if self.shared else None
        async with self.feeds_running(), self.exchanges_running(), traders_running(
                self.rt, markets=self.markets, providers=self.providers, exchanges=self.exchanges,
                ingest=self.ingest, leases=leases) as manager:
            self.manager = manager  # started after the exchanges; everything stops in reverse order
            try:
                yield self
            finally:
                self.manager = None

    @contextlib.asynccontextmanager
    async def exchanges_running(self) -> AsyncIterator["Engine"]:
        """The exchanges the traders use (the sim loads its paper accounts and listens to the marks); one
        that cannot start is logged and left to fail its traders' calls with the reason."""
        used = list(dict.fromkeys(t.exchange_provider for t in self.rt.config.manager.traders))
        started: list[Exchange] = []
        try:
            for name in used:
                exchange = self.exchanges[name]
                try:
                    if self.shared and isinstance(exchange, SimExchange):
                        await exchange.start(traders=())  # the accounts load as their traders are taken
                    else:
                        await exchange.start()
                except ExchangeError as exc:
                    log.error("exchange could not start", exchange=name, error=str(exc))
                started.append(exchange)
            yield self
        finally:
            for exchange in reversed(started):
                await exchange.close()


    async def _shared_feeds(self, stop: asyncio.Event) -> None:
        """Run the feeds whose lease this process holds; follow the others from the store."""
        table = LeaseTable(self.rt.redis, self.rt.keys, self.owner, self.feeds, kind="feed", now_ms=wall_ms)
        running: dict[str, tuple[asyncio.Task, asyncio.Event]] = {}

        async def drop(names: list[str]) -> None:
            for name in names:
                if name in running:
                    task, halt = running.pop(name)
                    halt.set()
                    await asyncio.gather(task, return_exceptions=True)
                    self.feeds_held.discard(name)
                    log.info("market feed handed over", provider=name)

        every_s, next_tick = table.ttl_ms / 3000, 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                try:
                    if loop.time() >= next_tick:
                        changes = await table.tick(drop=drop)
                        next_tick = loop.time() + every_s
                        for name in changes.gained:
                            halt = asyncio.Event()
                            task = asyncio.create_task(self.feeds[name].run(halt), name=f"feed:{name}")
                            task.add_done_callback(_report_failure)
                            running[name] = (task, halt)
                            self.feeds_held.add(name)
                    for name, provider in self.providers.items():
                        if name not in running:
                            await provider.start()  # its candles and books (a REST client); idempotent
                            await refresh_from_store(self.rt, self.markets[name], list(provider.symbols))
                except Exception as exc:  # noqa: BLE001 - Redis or Postgres away for a moment: again later
                    log.error("shared feeds tick failed", error=repr(exc))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(every_s, _FOLLOW_EVERY_S))
                except asyncio.TimeoutError:
                    pass
        finally:
            await drop(list(running))
            for provider in self.providers.values():
                with contextlib.suppress(Exception):
                    await provider.close()
            with contextlib.suppress(Exception):
                await table.release_all()


def _report_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("engine task failed", task=task.get_name(), error=repr(task.exception()))


async def run_engine(engine: Engine, stop: asyncio.Event, *, feeds_only: bool = False) -> None:
    """Run ``engine`` until ``stop`` is set (the task ``nof0 run`` and ``nof0 feed`` start)."""
    async with engine.feeds_running() if feeds_only else engine.running():
        await stop.wait()
