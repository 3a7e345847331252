"""Shared helpers of the sim exchange tests: a market picture, a sim exchange on the test runtime, reads."""

from __future__ import annotations

from nof0.engine.exchange.sim.exchange import SimExchange
from nof0.engine.market.provider import AssetContext, AssetInfo, MarketSnapshot, Mids
from nof0.engine.market.state import MarketState

T0 = 1_761_001_200_000  # 2025-10-20 23:00:00 UTC, an hour boundary
TRADER = "trader_aggressive_short"  # etc/manager.yaml: sim exchange, 10,000 USD
ASSETS = {
    "BTC": AssetInfo("BTC", 5, 40),
    "ETH": AssetInfo("ETH", 4, 25),
    "SOL": AssetInfo("SOL", 2, 20),
}


def market(prices: dict[str, float] | None = None, funding: float = 0.0000125, ts_ms: int = T0) -> MarketState:
    prices = prices or {"BTC": 100_000.0, "ETH": 4000.0, "SOL": 200.0}
    state = MarketState("hyperliquid")
    state.apply_snapshot(MarketSnapshot(
        ts_ms=ts_ms, assets=dict(ASSETS),
        contexts={s: AssetContext(funding=funding, open_interest=1000.0, mark_px=p) for s, p in prices.items()},
    ))
    return state


async def move(state: MarketState, ts_ms: int, **prices: float) -> None:
    await state.apply_mids(Mids(ts_ms=ts_ms, prices=prices))


def markets_seeing(config, state: MarketState) -> dict[str, MarketState]:
    """``state`` under every market provider a trader may use (manager.yaml's and market.yaml's default),
    so the tests do not depend on which one the shipped configuration names."""
    names = {t.market_provider for t in config.manager.traders} | {config.market.default}
    return {name: state for name in sorted(names)}


def sim(rt, state: MarketState) -> SimExchange:
    return SimExchange(rt, "sim", rt.config.exchange.providers["sim"], markets_seeing(rt.config, state))


async def rows(rt, sql: str, *params) -> list[dict]:
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql, params)
        return await cur.fetchall()
