"""The sim provider: prices are a function of seed, symbol and clock only; realistic levels and contexts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nof0.engine.market.provider import MarketError
from nof0.engine.market.sim import SIM_ASSETS, SimAsset, SimMarket
from nof0.engine.market.timing import advancing_sleep
from nof0.kernel.clock import FixedClock

ANCHOR = 1_761_436_800_000  # 2025-10-26T00:00:00Z
SIX = ["BTC", "ETH", "SOL", "BNB", "DOGE", "XRP"]
DAY = 86_400_000


def sim(seed=42, clock=None, **kw) -> SimMarket:
    return SimMarket("sim", kw.pop("symbols", SIX), clock=clock or FixedClock(ANCHOR), seed=seed, anchor_ms=ANCHOR, **kw)


async def test_the_anchor_time_shows_the_starting_prices():
    mids = await sim().mids()
    assert mids.ts_ms == ANCHOR
    assert mids.prices == {s: SIM_ASSETS[s].price for s in SIX}


async def test_same_seed_and_clock_give_the_same_prices_in_any_order_and_process():
    times = [ANCHOR + 3_600_000 * 24 * 40 + 1234, ANCHOR - DAY * 90, ANCHOR + 17_000, ANCHOR + 2**24 * 1000 * 3]
    a, b = sim(), sim()
    forward = [[a.price_at(s, t) for s in SIX] for t in times]
    backward = [[b.price_at(s, t) for s in SIX] for t in reversed(times)][::-1]
    assert forward == backward
    c = sim(seed=43)
    assert [[c.price_at(s, t) for s in SIX] for t in times] != forward
    # a symbol's path does not depend on which other symbols the provider serves
    alone = sim(symbols=["ETH"])
    assert [alone.price_at("ETH", t) for t in times] == [row[1] for row in forward]


async def test_prices_hold_within_a_step_and_move_between_steps():
    m = sim(tick_interval_s=2.0)
    t = ANCHOR + 10 * DAY
    assert m.price_at("BTC", t) == m.price_at("BTC", t + 1999)
    assert (m.mids_at(t + 1999)).ts_ms == t
    moves = [m.price_at("BTC", t + 2000 * i) for i in range(50)]
    assert len(set(moves)) > 10


def test_prices_follow_hyperliquids_rounding():
    m = sim()
    for s in SIX:
        decimals = 6 - SIM_ASSETS[s].sz_decimals
        for i in range(200):
            px = m.price_at(s, ANCHOR + i * 997_000)
            # at most 5 significant figures, but an integer price is always allowed (Hyperliquid's rule)
            digits = repr(px).replace(".", "").lstrip("0").rstrip("0")
            assert px == int(px) or len(digits) <= 5, (s, px)
            assert round(px, decimals) == px


def test_daily_volatility_is_the_configured_one():
    m = sim(symbols=["BTC", "DOGE"], tick_interval_s=60.0)
    for s in ("BTC", "DOGE"):
        closes = [m.price_at(s, ANCHOR + DAY * d) for d in range(-1500, 1500)]
        vol = float(np.std(np.diff(np.log(closes))))
        assert vol == pytest.approx(SIM_ASSETS[s].volatility, rel=0.1)
    calm = sim(symbols=["BTC"], volatility_scale=0.0)
    assert {calm.price_at("BTC", ANCHOR + DAY * d) for d in range(30)} == {SIM_ASSETS["BTC"].price}


def test_contexts_and_metadata_look_like_hyperliquids():
    m = sim()
    t = ANCHOR + 5 * DAY + 123_456
    snap = m.snapshot_at(t)
    assert snap.ts_ms == t and set(snap.assets) == set(SIX) == set(snap.contexts)
    assert (snap.assets["BTC"].sz_decimals, snap.assets["BTC"].max_leverage) == (5, 40)
    assert (snap.assets["DOGE"].sz_decimals, snap.assets["DOGE"].max_leverage) == (0, 10)
    for s in SIX:
        ctx = snap.contexts[s]
        assert ctx.mark_px == ctx.mid_px == m.price_at(s, t)
        assert ctx.prev_day_px == m.price_at(s, t - DAY)
        assert abs(ctx.funding) < 0.001 and ctx.open_interest > 0 and ctx.day_ntl_vlm > 0
        assert ctx.impact_pxs[0] <= ctx.mark_px <= ctx.impact_pxs[1]
        assert ctx.open_interest * ctx.mark_px == pytest.approx(SIM_ASSETS[s].open_interest_usd, rel=0.3)
    # funding changes by the hour, not within it
    same_hour = m.context_at("BTC", t - (t % 3_600_000) + 10)
    assert same_hour.funding == m.context_at("BTC", t - (t % 3_600_000) + 3_599_000).funding
    assert m.snapshot_at(t) == snap


def test_candles_come_from_the_same_path():
    m = sim(tick_interval_s=10.0)
    now = ANCHOR + 3 * DAY
    candles = m.candles_between("ETH", "1h", now - 48 * 3_600_000, now)
    assert len(candles) == 48
    assert [c.t for c in candles] == [now - (48 - i) * 3_600_000 for i in range(48)]
    for c in candles:
        assert c.o == m.price_at("ETH", c.t) and c.c == m.price_at("ETH", c.T)
        assert c.l <= min(c.o, c.c) <= max(c.o, c.c) <= c.h and c.n == 360 and c.T == c.t + 3_599_999
        path = [m.price_at("ETH", c.t + 10_000 * i) for i in range(360)]
        assert (c.h, c.l) == (max(path), min(path))


async def test_candles_never_show_the_future():
    clock = FixedClock(ANCHOR + DAY)
    m = sim(clock=clock)
    candles = await m.candles("BTC", "4h", ANCHOR, ANCHOR + 10 * DAY)
    # six closed candles and the one in progress, which holds only what happened up to now
    assert len(candles) == 7 and candles[-1].t == clock.now_ms() and candles[-1].n == 1
    assert candles[-1].c == m.price_at("BTC", clock.now_ms())
    with pytest.raises(MarketError, match="unknown candle interval"):
        await m.candles("BTC", "7m", ANCHOR, ANCHOR + DAY)


async def test_stream_yields_one_mids_per_step_on_a_simulated_clock():
    clock = FixedClock(ANCHOR + 500)
    m = sim(clock=clock, sleep=advancing_sleep(clock))
    await m.start()
    seen = []
    async for mids in m.stream():
        seen.append(mids)
        if len(seen) == 5:
            break
    assert [x.ts_ms for x in seen] == [ANCHOR + 1000 * i for i in range(5)]
    assert seen == [m.mids_at(ANCHOR + 1000 * i) for i in range(5)]
    clock.advance(3_600_000)  # a jump lands on the step of the new time
    async for mids in m.stream():
        assert mids.ts_ms == ANCHOR + 3_604_000
        break


def test_other_symbols_need_their_levels():
    with pytest.raises(MarketError, match="no starting price for HYPE"):
        sim(symbols=["BTC", "HYPE"])
    m = sim(symbols=["HYPE"], assets={"HYPE": SimAsset(45.0, 0.06, 2, 10, 0.0000125, 1e9, 6e8)})
    assert m.price_at("HYPE", ANCHOR) == 45.0
    assert math.isfinite(m.price_at("HYPE", ANCHOR + 100 * DAY))
