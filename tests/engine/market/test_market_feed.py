"""The feed: a provider's prices and snapshots reach Postgres and Redis through IngestService in batches,
the MarketState follows, and failures (store, snapshot, stream, silence) are counted, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import json

import psycopg
import pytest

from nof0.engine.market.feed import Feed, FeedSettings, market_meta_event
from nof0.engine.market.hyperliquid.parse import parse_meta_and_asset_ctxs
from nof0.engine.market.provider import Mids
from nof0.engine.market.sim import SimMarket
from nof0.engine.market.state import MarketState
from nof0.engine.market.timing import advancing_sleep
from nof0.ingest.service import IngestService
from nof0.kernel.clock import FixedClock
from tests.engine.market.scripted import ScriptedMarket
from tests.fakes.hyperliquid_market import FIXTURES

SIX = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")
T0 = 1_761_452_335_744
FAST = FeedSettings(batch_size=1000, batch_linger_s=0.001, meta_poll_s=3600, stale_after_s=3600, retry_min_s=0.01,
                    retry_max_s=0.02)


def fixture_snapshot(ts_ms=T0):
    return parse_meta_and_asset_ctxs((FIXTURES / "meta_and_asset_ctxs.json").read_bytes(), ts_ms, set(SIX),
                                     lambda *a: None)


class RecordingIngest(IngestService):
    """The real service, recording each call's events; ``fail`` raises before the next price writes."""

    def __init__(self, rt, **kw):
        super().__init__(rt, **kw)
        self.calls: list[list] = []
        self.fail: list[Exception] = []

    async def ingest_located(self, entries, *, source):
        entries = list(entries)
        ticks = bool(entries) and isinstance(entries[0][1], bytes)  # the feed sends its ticks as JSON lines
        if ticks and self.fail:
            raise self.fail.pop(0)
        self.calls.append(["price_tick" if ticks else "other" for _ in entries])
        return await super().ingest_located(entries, source=source)


@contextlib.asynccontextmanager
async def running(feed: Feed):
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_prices_and_metadata_reach_postgres_redis_and_the_state(rt):
    provider = ScriptedMarket("hyperliquid", SIX, fixture_snapshot())
    state = MarketState("hyperliquid")
    feed = Feed(rt, provider, state, FAST)
    async with running(feed):
        await feed.wait_for(lambda s: s.snapshots_written == 1)
        assert state.asset("BTC").sz_decimals == 5 and state.context("ETH").funding == 0.0000110938
        provider.queue.put_nowait(Mids(T0, {"BTC": 111317.5, "ETH": 3929.85}))
        provider.queue.put_nowait(Mids(T0 + 500, {"BTC": 111320.5, "SOL": 193.245}))
        await feed.wait_for(lambda s: s.ticks_written == 4)
        assert state.mark("BTC") == 111320.5 and state.mark("ETH") == 3929.85
    async with rt.pool.connection() as conn:
        ticks = await (await conn.execute(
            "SELECT symbol, price, ts_ms, source FROM price_ticks ORDER BY ts_ms, symbol")).fetchall()
        latest = await (await conn.execute("SELECT symbol, price, ts_ms FROM price_latest ORDER BY symbol")).fetchall()
        assets = await (await conn.execute(
            "SELECT symbol, sz_decimals, max_leverage, margin_table_id, ts_ms FROM market_assets"
            " WHERE provider = 'hyperliquid' ORDER BY symbol")).fetchall()
        ctx = await (await conn.execute(
            "SELECT funding, open_interest, mark_px, mid_px, impact_pxs, day_base_vlm FROM market_asset_ctx"
            " WHERE provider = 'hyperliquid' AND symbol = 'BTC'")).fetchone()
    assert [(t["symbol"], t["price"], t["ts_ms"] - T0, t["source"]) for t in ticks] == [
        ("BTC", 111317.5, 0, "hyperliquid"), ("ETH", 3929.85, 0, "hyperliquid"),
        ("BTC", 111320.5, 500, "hyperliquid"), ("SOL", 193.245, 500, "hyperliquid")]
    assert [(r["symbol"], r["price"]) for r in latest] == [("BTC", 111320.5), ("ETH", 3929.85), ("SOL", 193.245)]
    assert [(a["symbol"], a["sz_decimals"], a["max_leverage"], a["margin_table_id"]) for a in assets] == [
        ("BNB", 3, 10, 52), ("BTC", 5, 40, 56), ("DOGE", 0, 10, 52), ("ETH", 4, 25, 55), ("SOL", 2, 20, 54),
        ("XRP", 0, 20, 53)]
    assert dict(ctx) == {"funding": 0.0000125, "open_interest": 30426.48138, "mark_px": 111524.0,
                         "mid_px": 111523.5, "impact_pxs": [111521.0, 111524.0], "day_base_vlm": 27640.01734}
    btc = json.loads(await rt.redis.get(rt.keys.price_latest("BTC").name))
    assert btc == {"symbol": "BTC", "price": 111320.5, "timestamp": T0 + 500}
    assert set(json.loads(await rt.redis.get(rt.keys.crypto_prices().name))) == {"BTC", "ETH", "SOL"}
    asset = json.loads(await rt.redis.get(rt.keys.market_asset("hyperliquid", "XRP").name))
    assert (asset["sz_decimals"], asset["max_leverage"]) == (0, 20)
    assert json.loads(await rt.redis.get(rt.keys.market_ctx("hyperliquid", "BTC").name))["mark_px"] == 111524.0
    m = rt.metrics.registry.get_sample_value
    assert m("nof0_market_ticks_total", {"provider": "hyperliquid"}) == 4
    assert m("nof0_market_lag_seconds_count", {"provider": "hyperliquid"}) == 2
    assert m("nof0_market_last_tick_timestamp", {"provider": "hyperliquid"}) == (T0 + 500) / 1000
    assert provider.closed


async def test_batches_hold_at_most_batch_size_ticks_and_nothing_is_lost(rt):
    provider = ScriptedMarket("sim", SIX)
    ingest = RecordingIngest(rt)
    feed = Feed(rt, provider, MarketState("sim"), FeedSettings(batch_size=40, batch_linger_s=0.05, meta_poll_s=3600),
                ingest=ingest)
    async with running(feed):
        for i in range(50):  # 300 ticks at once
            provider.queue.put_nowait(Mids(T0 + i, {s: 100.0 + i for s in SIX}))
        await feed.wait_for(lambda s: s.ticks_written == 300)
    sizes = [len(c) for c in ingest.calls if c[0] == "price_tick"]
    assert sum(sizes) == 300 and max(sizes) <= 40 and len(sizes) >= 8
    async with rt.pool.connection() as conn:
        assert (await (await conn.execute("SELECT count(*) AS n FROM price_ticks")).fetchone())["n"] == 300


async def test_a_failed_write_is_retried_and_its_ticks_kept(rt):
    provider = ScriptedMarket("sim", ["BTC"])
    ingest = RecordingIngest(rt)
    ingest.fail = [psycopg.OperationalError("server closed the connection"), psycopg.OperationalError("again")]
    feed = Feed(rt, provider, MarketState("sim"), FAST, ingest=ingest)
    async with running(feed):
        provider.queue.put_nowait(Mids(T0, {"BTC": 1.5}))
        provider.queue.put_nowait(Mids(T0 + 1, {"BTC": 2.5}))
        await feed.wait_for(lambda s: s.ticks_written == 2)
    assert rt.metrics.registry.get_sample_value("nof0_market_errors_total",
                                                {"provider": "sim", "operation": "write"}) == 2
    async with rt.pool.connection() as conn:
        rows = await (await conn.execute("SELECT price FROM price_ticks ORDER BY ts_ms")).fetchall()
    assert [r["price"] for r in rows] == [1.5, 2.5]


async def test_a_failed_snapshot_is_counted_and_polled_again(rt):
    provider = ScriptedMarket("hyperliquid", SIX, fixture_snapshot())
    provider.snapshot_errors = [RuntimeError("venue down"), RuntimeError("still down")]
    feed = Feed(rt, provider, MarketState("hyperliquid"),
                FeedSettings(meta_poll_s=0.01, stale_after_s=3600))
    async with running(feed):
        await feed.wait_for(lambda s: s.snapshots_written >= 1)
    assert provider.snapshots >= 3
    assert rt.metrics.registry.get_sample_value("nof0_market_errors_total",
                                                {"provider": "hyperliquid", "operation": "snapshot"}) == 2


async def test_a_stale_feed_is_counted_once_per_episode(rt):
    provider = ScriptedMarket("sim", ["BTC"])
    feed = Feed(rt, provider, MarketState("sim"), FeedSettings(stale_after_s=0.05, meta_poll_s=3600))
    async with running(feed):
        await feed.wait_for(lambda s: s.stale)
        provider.queue.put_nowait(Mids(T0, {"BTC": 1.5}))
        await feed.wait_for(lambda s: not s.stale)
        await feed.wait_for(lambda s: s.stale)
    assert feed.stats.stale_episodes == 2
    assert rt.metrics.registry.get_sample_value("nof0_market_stale_total", {"provider": "sim"}) == 2


async def test_a_failing_stream_is_restarted(rt):
    provider = ScriptedMarket("sim", ["BTC"])
    feed = Feed(rt, provider, MarketState("sim"), FAST)
    async with running(feed):
        provider.queue.put_nowait(RuntimeError("provider bug"))
        provider.queue.put_nowait(Mids(T0, {"BTC": 1.5}))
        await feed.wait_for(lambda s: s.ticks_written == 1)
    assert provider.streams == 2
    assert rt.metrics.registry.get_sample_value("nof0_market_errors_total",
                                                {"provider": "sim", "operation": "stream"}) == 1


async def test_a_finite_stream_is_written_to_its_end(rt):
    provider = ScriptedMarket("replay", ["BTC"])
    for i in range(5):
        provider.queue.put_nowait(Mids(T0 + i, {"BTC": 10.0 + i}))
    provider.queue.put_nowait(None)
    feed = Feed(rt, provider, MarketState("replay"), FeedSettings(batch_size=2, meta_poll_s=3600))
    await asyncio.wait_for(feed.run(asyncio.Event()), 10)  # returns on its own
    assert feed.stats.ticks_written == 5


async def test_a_listener_failure_does_not_stop_the_prices(rt):
    provider = ScriptedMarket("sim", ["BTC"])
    state = MarketState("sim")

    async def broken(mids):
        raise ValueError("listener bug")

    state.subscribe(broken)
    feed = Feed(rt, provider, state, FAST)
    async with running(feed):
        provider.queue.put_nowait(Mids(T0, {"BTC": 1.5}))
        await feed.wait_for(lambda s: s.ticks_written == 1)
    assert state.mark("BTC") == 1.5


async def test_the_sim_feed_stores_the_sims_own_prices(rt):
    clock = FixedClock(T0)
    sim = SimMarket("sim", SIX, clock=clock, seed=7, sleep=advancing_sleep(clock))
    feed = Feed(rt, sim, MarketState("sim"), FeedSettings(meta_poll_s=3600, stale_after_s=3600))
    async with running(feed):
        await feed.wait_for(lambda s: s.ticks_written >= 60 and s.snapshots_written == 1)
    async with rt.pool.connection() as conn:
        rows = await (await conn.execute("SELECT symbol, price, ts_ms FROM price_ticks WHERE source = 'sim'")).fetchall()
        ctx = await (await conn.execute(
            "SELECT mark_px, ts_ms FROM market_asset_ctx WHERE provider = 'sim' AND symbol = 'ETH'")).fetchone()
    assert len(rows) >= 60
    assert all(r["price"] == sim.price_at(r["symbol"], r["ts_ms"]) for r in rows)
    assert ctx["mark_px"] == sim.price_at("ETH", ctx["ts_ms"])


def test_market_meta_event_keeps_every_number():
    snap = fixture_snapshot()
    event, left_out = market_meta_event("hyperliquid", snap)
    assert left_out == []
    universe, ctxs = event.meta_and_asset_ctxs
    assert [u.name for u in universe.universe] == list(snap.assets)
    for u, c in zip(universe.universe, ctxs):
        ctx = snap.contexts[u.name]
        assert float(c.funding) == ctx.funding and float(c.markPx) == ctx.mark_px
        assert [float(p) for p in c.impactPxs] == list(ctx.impact_pxs)
        assert u.szDecimals == snap.assets[u.name].sz_decimals
    from msgspec import convert, to_builtins
    from nof0.kernel.events import MarketMeta, check_event

    check_event(convert(to_builtins(event), MarketMeta))  # a valid event, as ingest checks it


@pytest.mark.parametrize("missing", ["prev_day_px", "oracle_px"])
def test_an_incomplete_context_is_left_out_of_the_event(missing):
    from dataclasses import replace

    snap = fixture_snapshot()
    snap.contexts["ETH"] = replace(snap.contexts["ETH"], **{missing: None})
    event, left_out = market_meta_event("hyperliquid", snap)
    assert left_out == ["ETH"] and "ETH" not in [u.name for u in event.meta_and_asset_ctxs[0].universe]
