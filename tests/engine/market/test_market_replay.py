"""The replay provider re-plays stored ticks of a range at a chosen speed, on a simulated clock."""

from __future__ import annotations

import json

from nof0.engine.market.replay import ReplayMarket
from nof0.engine.market.timing import advancing_sleep
from nof0.ingest.service import IngestService
from nof0.kernel.clock import FixedClock
from nof0.kernel.events import MarketMeta, PriceTick, SymbolEvent
from tests.fakes.hyperliquid_market import FIXTURES

T0 = 1_761_452_000_000


async def store(rt, ticks, source="hyperliquid"):
    events = [SymbolEvent(symbol=s) for s in ("BTC", "ETH", "SOL")]
    events += [PriceTick(symbol=s, price=p, ts_ms=t, source=source) for t, s, p in ticks]
    report = await IngestService(rt).ingest(events)
    assert report.ok, report.rejections


def replay(rt, clock, **kw) -> ReplayMarket:
    opts = dict(pool=rt.pool, source="hyperliquid", symbols=["BTC", "ETH"], start_ms=T0, end_ms=T0 + 60_000,
                speed=10.0, clock=clock, sleep=advancing_sleep(clock), page_size=3)
    opts.update(kw)
    return ReplayMarket("replay", **opts)


async def test_ticks_are_replayed_in_order_at_the_chosen_speed(rt):
    ticks = [(T0 + 1000 * i, s, 100.0 + i + (0.5 if s == "ETH" else 0)) for i in range(0, 70, 5) for s in ("BTC", "ETH")]
    ticks += [(T0 + 2000, "SOL", 190.0), (T0 - 1, "BTC", 1.0), (T0 + 3000, "BTC", 7.0)]
    await store(rt, ticks)
    await store(rt, [(T0 + 4000, "BTC", 9.0)], source="other")
    clock = FixedClock(1_800_000_000_000)
    m = replay(rt, clock)
    await m.start()
    seen = [(mids.ts_ms - T0, clock.now_ms() - 1_800_000_000_000, mids.prices) async for mids in m.stream()]
    # one Mids per stored millisecond in [start, end) of the source and symbols asked, pages of 3 ticks
    assert [s[0] for s in seen] == [0, 3000, 5000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000, 45_000,
                                    50_000, 55_000]
    assert all(wall == round(offset / 10) for offset, wall, _ in seen)  # speed 10: a minute in 6 s
    assert seen[0][2] == {"BTC": 100.0, "ETH": 100.5} and seen[1][2] == {"BTC": 7.0}
    assert (await m.mids()).prices == {"BTC": 155.0, "ETH": 155.5}
    assert m.position_ms == T0 + 55_000


async def test_candles_stop_at_the_replay_position(rt):
    await store(rt, [(T0 + 1000 * i, "BTC", 100.0 + i) for i in range(0, 600, 10)])
    clock = FixedClock(1_800_000_000_000)
    m = replay(rt, clock, end_ms=T0 + 600_000, speed=0.0, page_size=100)
    stream = m.stream()
    for _ in range(13):  # up to T0 + 120 s
        await stream.__anext__()
    assert clock.now_ms() == 1_800_000_000_000  # speed 0: no pacing
    candles = await m.candles("BTC", "1m", T0 - 60_000, T0 + 600_000)
    first_minute = T0 // 60_000 * 60_000
    assert candles[-1].c == 220.0 and candles[-1].t <= T0 + 120_000
    assert sum(c.n for c in candles) == 13 and candles[0].t == first_minute
    await stream.aclose()


async def test_snapshot_serves_the_stored_metadata(rt):
    meta = json.loads((FIXTURES / "meta_and_asset_ctxs.json").read_text())
    report = await IngestService(rt).ingest([MarketMeta(provider="hyperliquid", ts_ms=T0, meta_and_asset_ctxs=meta)])
    assert report.ok
    m = replay(rt, FixedClock(T0))
    snap = await m.snapshot()
    assert set(snap.assets) == {"BTC", "ETH"} and snap.ts_ms == T0
    assert snap.assets["BTC"].sz_decimals == 5 and snap.contexts["ETH"].mark_px == 3930.1
    assert snap.contexts["BTC"].impact_pxs == (111521.0, 111524.0)
