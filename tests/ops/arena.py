"""An arena with every kind of fact, ingested through the service, for the operations tests (rebuild,
backup, recovery): two models with positions, fills, trades, equity, chat, decisions, trader and
simulator state, prices and venue metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncio

from nof0.config import Config
from nof0.ingest.service import IngestService
from nof0.jobs.tasks import analytics_job
from nof0.kernel.events import MarketMeta
from tests.ingest import factories as f
from tests.ingest.factories import T0

META = json.loads((Path(__file__).parents[1] / "fixtures" / "hyperliquid-meta-and-asset-ctxs.json").read_text())
MODELS = ("m1", "m2")


def arena_events(n_trades: int = 3) -> list[Any]:
    events: list[Any] = [MarketMeta(provider="hyperliquid", ts_ms=T0, meta_and_asset_ctxs=META)]
    for m in MODELS:
        events += [f.model(m), f.trader_state(m)]
    events += [f.tick(s, p, dt) for dt in (0, 1000, 2000) for s, p in (("BTC", 100.0 + dt / 1000), ("ETH", 50.0))]
    for i, m in enumerate(MODELS):
        events += [
            f.position(f"{m}-p1", model_id=m, symbol="ETH", entry_price=49.0, quantity=1.0 + i),
            *[f.trade(f"{m}_t{k}", model_id=m, symbol="BTC", dt=k * 120_000) for k in range(n_trades)],
            f.snapshot(m, 0, 10_000.0), f.snapshot(m, 60_000, 10_050.0 + i), f.snapshot(m, 120_000, 10_025.0),
            f.message(m, "user", f"hello {m}", 0), f.message(m, "assistant", f"thinking about {m}", 1000),
            f.cycle(m, 1), f.cycle(m, 2, dt=60_000),
            f.sim_order(m, 1), f.sim_order(m, 2, dt=1000, side="sell"), f.sim_balance(m, "USD", 9_000.0 + i),
        ]
    return events


async def ingest_arena(rt, n_trades: int = 3) -> None:
    report = await IngestService(rt).ingest(arena_events(n_trades))
    assert report.ok, report.rejections


def seed_arena(config: Config, n_trades: int = 3) -> None:
    """For tests that drive the CLI (no event loop of their own): the arena, then the analytics job."""
    from nof0.runtime import Servers, open_runtime

    async def go() -> None:
        async with open_runtime(config, Servers(config.root.postgres.dsn, config.root.redis.url)) as rt:
            await ingest_arena(rt, n_trades)
            await analytics_job(rt)

    asyncio.run(go())
