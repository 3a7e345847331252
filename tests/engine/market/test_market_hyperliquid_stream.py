"""The WebSocket feed against the local fake: subscriptions, frames to Mids, malformed frames skipped, a
dropped or silent connection replaced, resubscribed and its gap filled by REST."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from nof0.engine.market.hyperliquid.provider import HyperliquidMarket
from nof0.engine.market.hyperliquid.ws import ws_url
from nof0.engine.market.provider import MarketError
from nof0.kernel.clock import SystemClock
from nof0.obs.metrics import Metrics
from tests.fakes.hyperliquid_market import FakeHyperliquid, fixture

SIX = ["BTC", "ETH", "SOL", "BNB", "DOGE", "XRP"]


def provider(base_url: str, **kw) -> HyperliquidMarket:
    opts = dict(symbols=SIX, clock=SystemClock(), metrics=Metrics(), ping_interval_s=0.2, pong_timeout_s=0.3,
                reconnect_min_s=0.01, reconnect_max_s=0.05, timeout_s=2.0)
    opts.update(kw)
    return HyperliquidMarket("hyperliquid", base_url=base_url, **opts)


@contextlib.asynccontextmanager
async def streaming(p: HyperliquidMarket):
    """The provider's stream consumed into a queue for the test to await."""
    await p.start()
    queue: asyncio.Queue = asyncio.Queue()

    async def consume():
        async for mids in p.stream():
            await queue.put(mids)

    task = asyncio.create_task(consume())
    try:
        yield queue
    finally:
        await p.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def next_mids(queue: asyncio.Queue, timeout: float = 10.0):
    return await asyncio.wait_for(queue.get(), timeout)


def metric(p: HyperliquidMarket, name: str, **labels) -> float:
    return p.metrics.registry.get_sample_value(name, {"provider": "hyperliquid", **labels}) or 0.0


def test_the_socket_is_at_the_host_of_base_url():
    assert ws_url("https://api.hyperliquid.xyz") == "wss://api.hyperliquid.xyz/ws"
    assert ws_url("http://127.0.0.1:8080/some/path/") == "ws://127.0.0.1:8080/ws"
    with pytest.raises(MarketError):
        ws_url("api.hyperliquid.xyz")


async def test_frames_become_mids_of_the_configured_symbols(fake):
    p = provider(fake.base_url)
    async with streaming(p) as queue:
        await fake.wait_for(lambda: fake.subscriptions >= 1)
        await fake.send_raw((fake_frame := json.dumps(fixture("ws_all_mids.json"))))
        mids = await next_mids(queue)
        assert mids.prices == {"BTC": 111320.5, "ETH": 3930.05, "SOL": 193.245, "BNB": 1117.85, "DOGE": 0.19527,
                               "XRP": 2.60835}
        assert "@142" in fake_frame  # other coins of the frame are not passed on
        assert fake.requests_of("allMids") == []  # the first connection has no gap to fill


async def test_malformed_frames_and_prices_are_skipped_and_counted(fake):
    p = provider(fake.base_url)
    async with streaming(p) as queue:
        await fake.wait_for(lambda: fake.subscriptions >= 1)
        for text in ("garbage", '{"channel": "allMids", "data": {"mids": [1, 2]}}', "[]",
                     '{"channel": "allMids", "data": {"mids": {"BTC": "NaN"}}}'):
            await fake.send_raw(text)
        await fake.push_mids({"BTC": "-5", "ETH": "3931.5"})
        assert (await next_mids(queue)).prices == {"ETH": 3931.5}
        assert metric(p, "nof0_market_skipped_total", reason="malformed_frame") == 3
        assert metric(p, "nof0_market_skipped_total", reason="bad_price") == 2
        assert queue.empty()


async def test_a_dropped_connection_is_replaced_resubscribed_and_its_gap_filled(fake):
    p = provider(fake.base_url)
    async with streaming(p) as queue:
        await fake.wait_for(lambda: fake.subscriptions >= 1)
        await fake.push_mids({"BTC": "111000.0"})
        assert (await next_mids(queue)).prices == {"BTC": 111000.0}
        fake.mids["BTC"] = "111500.0"  # what the client misses while it is away
        await fake.drop()
        await fake.wait_for(lambda: fake.subscriptions >= 2 and len(fake.requests_of("allMids")) >= 1)
        gap = await next_mids(queue)
        assert gap.prices["BTC"] == 111500.0 and set(gap.prices) == set(SIX)
        await fake.push_mids({"BTC": "111600.0"})
        assert (await next_mids(queue)).prices == {"BTC": 111600.0}
        assert p.reconnects == {"dropped": 1} and p.gaps == 1
        assert metric(p, "nof0_market_reconnects_total", reason="dropped") == 1
        assert metric(p, "nof0_market_gaps_total") == 1


async def test_a_silent_connection_is_detected_by_its_heartbeat_and_replaced(fake):
    p = provider(fake.base_url)
    async with streaming(p) as queue:
        await fake.wait_for(lambda: fake.pings >= 1)  # the heartbeat runs and is answered
        fake.silent = True
        await fake.wait_for(lambda: fake.connections >= 2)
        fake.silent = False
        await fake.wait_for(lambda: fake.subscriptions >= 2)
        await next_mids(queue)  # the gap fill
        await fake.push_mids({"SOL": "200.5"})
        assert (await next_mids(queue)).prices == {"SOL": 200.5}
        assert p.reconnects == {"silent": 1}


async def test_an_unreachable_venue_is_retried_until_it_answers():
    async with FakeHyperliquid() as first:
        port = first.port
    delays, retried_twice = [], asyncio.Event()

    async def sleep(seconds):
        delays.append(seconds)
        if len(delays) == 2:
            retried_twice.set()
        await asyncio.sleep(seconds)

    p = provider(f"http://127.0.0.1:{port}", sleep=sleep, reconnect_min_s=0.02, reconnect_max_s=0.04)
    async with streaming(p) as queue:
        await asyncio.wait_for(retried_twice.wait(), 10)
        assert p.reconnects["connect_failed"] >= 2 and queue.empty()
        assert 0.01 <= delays[0] <= 0.02 and 0.02 <= delays[1] <= 0.04  # doubling, with jitter
        async with FakeHyperliquid(port=port) as back:
            await back.wait_for(lambda: back.subscriptions >= 1)
            await back.push_mids({"XRP": "2.7"})
            assert (await next_mids(queue)).prices["XRP"] == 2.7  # the gap fill (a connection was lost before)


async def test_candle_and_trade_subscriptions_reach_their_listeners(fake):
    p = provider(fake.base_url, symbols=["BTC"], candle_intervals=["1m"], trades=True)
    candles, trades = [], []
    p.on_candle.append(candles.append)
    p.on_trades.append(trades.extend)
    async with streaming(p) as queue:
        await fake.wait_for(lambda: fake.subscriptions >= 3)
        subs = [s for c in fake._conns for s in c.subscriptions]
        assert subs == [{"type": "allMids"}, {"type": "candle", "coin": "BTC", "interval": "1m"},
                        {"type": "trades", "coin": "BTC"}]
        await fake.send_raw(json.dumps(fixture("ws_candle.json")))
        await fake.send_raw(json.dumps(fixture("ws_trades.json")))
        await fake.push_mids({"BTC": "1.5"})
        await next_mids(queue)  # frames are handled in order: the candle and the trades came first
    assert candles[0].c == 111317.0 and [t.tid for t in trades] == [1042719583314566, 529416027375040]


async def test_snapshot_of_all_perps_when_no_symbols_are_configured(fake):
    p = provider(fake.base_url, symbols=[])
    await p.start()
    try:
        assert (await p.mids()).prices == {}  # nothing is wanted before the first snapshot lists the perps
        snap = await p.snapshot()
        assert "HYPE" in snap.assets and "@142" not in snap.assets
        mids = await p.mids()
        assert "HYPE" in mids.prices and "@142" not in mids.prices and "PURR/USDC" not in mids.prices
    finally:
        await p.close()


async def test_updates_within_one_millisecond_get_distinct_times(fake):
    from nof0.kernel.clock import FixedClock

    p = provider(fake.base_url, clock=FixedClock(1_761_452_335_744))
    async with streaming(p) as queue:
        await fake.wait_for(lambda: fake.subscriptions >= 1)
        for px in ("1.5", "2.5", "3.5"):
            await fake.push_mids({"BTC": px})
        got = [await next_mids(queue) for _ in range(3)]
    assert [m.ts_ms - 1_761_452_335_744 for m in got] == [0, 1, 2]
    assert [m.prices["BTC"] for m in got] == [1.5, 2.5, 3.5]
