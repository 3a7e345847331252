"""Concurrent cycles' requests are served by one call, each getting its own answer, and a failed call
fails every request it held, never leaving one waiting."""

from __future__ import annotations

import asyncio

import pytest

from nof0.engine.traders.cycle_cost import SharedClock
from nof0.engine.traders.grouped import GroupCall


async def test_requests_made_at_once_share_one_call_and_get_their_own_answers():
    calls: list[list[int]] = []

    async def square(xs: list[int]) -> list[int]:
        calls.append(list(xs))
        await asyncio.sleep(0.01)
        return [x * x for x in xs]

    group = GroupCall(square)
    assert await asyncio.gather(*(group(x) for x in range(5))) == [0, 1, 4, 9, 16]
    assert calls == [[0, 1, 2, 3, 4]]
    # requests arriving while a call runs go together in the next one
    first = asyncio.ensure_future(group(7))
    await asyncio.sleep(0.001)
    later = await asyncio.gather(group(8), group(9))
    assert await first == 49 and later == [64, 81]
    assert calls[1:] == [[7], [8, 9]]


async def test_a_failed_call_fails_each_of_its_requests_and_the_next_call_works():
    async def flaky(xs: list[int]) -> list[int]:
        if 0 in xs:
            raise ValueError("zero")
        return xs

    group = GroupCall(flaky)
    results = await asyncio.gather(group(0), group(1), return_exceptions=True)
    assert [type(r) for r in results] == [ValueError, ValueError]
    assert await group(2) == 2


async def test_a_short_answer_is_an_error_not_a_hang():
    async def short(xs: list[int]) -> list[int]:
        return xs[:1]

    group = GroupCall(short)
    with pytest.raises(RuntimeError, match="answered 1 of 2"):
        await asyncio.gather(group(1), group(2))


def test_the_shared_clock_divides_each_moment_among_the_running_cycles():
    now = [0.0]
    clock = SharedClock(lambda: now[0])
    a = clock.start()
    now[0] = 1.0
    b = clock.start()  # a alone for 1 s
    now[0] = 3.0
    clock.stop(b)  # together for 2 s: 1 s each
    now[0] = 4.0
    clock.stop(a)  # a paused...
    now[0] = 10.0  # ... its time away is not counted
    clock.start(a)
    now[0] = 10.5
    assert clock.stop(a) == pytest.approx(1 + 1 + 1 + 0.5)
    assert b.seconds == pytest.approx(1.0)


async def test_traders_of_one_tick_share_the_symbol_views_and_the_market_text_follows_the_price():
    from types import SimpleNamespace

    from nof0.config import ExecutorConfig
    from nof0.engine.market.provider import AssetContext, AssetInfo, Candle, MarketSnapshot, Mids
    from nof0.engine.market.state import MarketState
    from nof0.engine.traders.context_builder import ContextBuilder
    from nof0.engine.traders.prompts import market_block

    t0 = 1_761_400_800_000

    async def candles(symbol, interval, start, end):
        step = 180_000 if interval == "3m" else 14_400_000
        return [Candle(t, t + step - 1, symbol, interval, 100.0 + i, 101.0 + i, 99.0 + i, 100.0 + i, 1.0)
                for i, t in enumerate(range(start - start % step, end, step))]

    market = MarketState("hyperliquid")
    market.apply_snapshot(MarketSnapshot(t0, {"BTC": AssetInfo("BTC", 3, 20)}, {"BTC": AssetContext(0.00001, 1e7, 111_000.0)}))
    builder = ContextBuilder(SimpleNamespace(), ExecutorConfig(), {"hyperliquid": candles})
    first = await builder.symbol_view(market, "BTC", t0)
    assert await builder.symbol_view(market, "BTC", t0) is first  # a second trader of the tick
    text = market_block(SimpleNamespace(symbols={"BTC": first}))
    assert "price 111000," in text
    await market.apply_mids(Mids(t0, {"BTC": 112_500.0}))
    moved = await builder.symbol_view(market, "BTC", t0)
    assert moved is not first and moved.price == 112_500.0
    assert "price 112500," in market_block(SimpleNamespace(symbols={"BTC": moved}))
    assert market_block(SimpleNamespace(symbols={"BTC": first})) == text
