"""The engine runner: one feed per market provider the traders use (or named), inside ``nof0 run``."""

from __future__ import annotations

import asyncio
import socket

import httpx

from nof0.engine.market.hyperliquid.provider import HyperliquidMarket
from nof0.engine.market.sim import SimMarket
from nof0.engine.runner import Engine, markets_in_use, run_engine
from nof0.kernel.clock import SystemClock
from nof0.service import run_service


def fast_sim(name="sim") -> SimMarket:
    return SimMarket(name, ["BTC", "ETH"], clock=SystemClock(), seed=1, tick_interval_s=0.02)


def test_the_traders_markets_are_the_default(rt):
    assert markets_in_use(rt.config) == ["sim"]  # the shipped traders trade the sim market (offline)
    for trader in rt.config.manager.traders:
        trader.market_provider = "hyperliquid"
    assert markets_in_use(rt.config) == ["hyperliquid"]
    engine = Engine(rt)  # built, not started: nothing connects
    assert list(engine.providers) == list(engine.markets) == list(engine.feeds) == ["hyperliquid"]
    assert isinstance(engine.providers["hyperliquid"], HyperliquidMarket)
    assert engine.feeds["hyperliquid"].settings.meta_poll_s == 60
    rt.config.manager.traders[1].market_provider = "sim"
    assert list(Engine(rt).providers) == ["hyperliquid", "sim"]
    assert list(Engine(rt, markets=["sim"]).providers) == ["sim"]
    # a provider handed in joins the traders' ones
    assert list(Engine(rt, providers={"extra": fast_sim("extra")}).providers) == ["hyperliquid", "sim", "extra"]


async def test_running_starts_and_stops_the_feeds(rt):
    engine = Engine(rt, markets=["sim"], providers={"sim": fast_sim()})
    async with engine.running():
        await engine.feeds["sim"].wait_for(lambda s: s.ticks_written >= 4 and s.snapshots_written >= 1)
        assert engine.markets["sim"].mark("BTC") is not None
        assert engine.markets["sim"].asset("ETH").max_leverage == 25
    assert engine.providers["sim"]._closed.is_set()
    stop = asyncio.Event()
    task = asyncio.create_task(run_engine(engine, stop, feeds_only=True))
    await engine.feeds["sim"].wait_for(lambda s: s.batches >= 4)
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_nof0_run_serves_the_prices_its_feed_writes(rt):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = Engine(rt, markets=["sim"], providers={"sim": fast_sim()})
    stop, listening = asyncio.Event(), asyncio.Event()
    service = asyncio.create_task(run_service(rt, stop, host="127.0.0.1", port=port, api_started=listening,
                                              engine=engine))
    await asyncio.wait_for(listening.wait(), 10)
    await engine.feeds["sim"].wait_for(lambda s: s.ticks_written >= 2)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        prices = (await c.get("/api/crypto-prices")).json()["prices"]
    assert set(prices) == {"BTC", "ETH"} and prices["BTC"]["price"] > 0
    stop.set()
    assert await asyncio.wait_for(service, 10) == 0
