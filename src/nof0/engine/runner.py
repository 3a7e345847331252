"""The engine of one process (engine.md "One process, one clock"): the market feeds, the exchanges and
the traders' manager, built from one ``Runtime``.

``Engine(rt)`` builds a provider, a ``MarketState`` and a ``Feed`` for every market provider a trader of
``manager.yaml`` uses (``markets=`` names them explicitly instead; ``providers=`` hands in providers
already built, e.g. a sim on a test's clock). ``async with engine.running():`` starts everything and
stops it on exit; ``async with engine.feeds_running():`` the feeds alone (``nof0 feed``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping

from nof0.config import Config
from nof0.engine.exchange.factory import build_exchanges
from nof0.engine.exchange.provider import Exchange, ExchangeError
from nof0.engine.market.factory import build_market_provider
from nof0.engine.market.feed import Feed, FeedSettings
from nof0.engine.market.provider import MarketProvider
from nof0.engine.market.state import MarketState
from nof0.engine.market.timing import Sleep
from nof0.engine.traders.manager import Manager
from nof0.engine.traders.running import traders_running
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["Engine", "markets_in_use", "run_engine"]

log = get_logger("nof0.engine")


def markets_in_use(config: Config) -> list[str]:
    """The market providers the traders use, in the order of manager.yaml."""
    return list(dict.fromkeys(t.market_provider for t in config.manager.traders))


class Engine:
    def __init__(self, rt: Runtime, *, markets: Iterable[str] | None = None,
                 providers: Mapping[str, MarketProvider] | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.rt = rt
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
        self.exchanges: dict[str, Exchange] = build_exchanges(rt, self.markets)
        self.manager: Manager | None = None  # the traders' manager, while ``running``

    @contextlib.asynccontextmanager
    async def feeds_running(self) -> AsyncIterator["Engine"]:
        """The market feeds, one task each, until the block ends."""
        stop = asyncio.Event()
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
        async with self.feeds_running(), self.exchanges_running(), traders_running(
                self.rt, markets=self.markets, providers=self.providers, exchanges=self.exchanges) as manager:
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
                    await exchange.start()
                except ExchangeError as exc:
                    log.error("exchange could not start", exchange=name, error=str(exc))
                started.append(exchange)
            yield self
        finally:
            for exchange in reversed(started):
                await exchange.close()


def _report_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("engine task failed", task=task.get_name(), error=repr(task.exception()))


async def run_engine(engine: Engine, stop: asyncio.Event, *, feeds_only: bool = False) -> None:
    """Run ``engine`` until ``stop`` is set (the task ``nof0 run`` and ``nof0 feed`` start)."""
    async with engine.feeds_running() if feeds_only else engine.running():
        await stop.wait()
