"""A market picture from the store, for a process that runs no feed (``nof0 order``): the latest prices
(``price_latest``), the asset metadata (``market_assets``) and contexts (``market_asset_ctx``) the feed
last ingested for a market provider, read through the domains' repositories."""

from __future__ import annotations

from collections.abc import Sequence

from nof0.engine.market.provider import AssetContext, AssetInfo, MarketSnapshot, Mids
from nof0.engine.market.state import MarketState
from nof0.market import repository as market_repo
from nof0.prices import repository as prices_repo
from nof0.runtime import Runtime

__all__ = ["market_from_store", "refresh_from_store"]


async def market_from_store(rt: Runtime, provider: str, symbols: Sequence[str]) -> MarketState:
    state = MarketState(provider)
    await refresh_from_store(rt, state, symbols)
    return state


async def refresh_from_store(rt: Runtime, state: MarketState, symbols: Sequence[str]) -> None:
    """Bring ``state`` up to what the store holds (an engine process whose feed runs elsewhere follows it
    this way); marks are applied, and its listeners told, only when newer."""
    provider = state.provider
    async with rt.pool.connection() as conn, conn.transaction():
        assets = await market_repo.list_assets(conn, provider, list(symbols))
        ctxs = await market_repo.list_asset_ctxs(conn, provider, list(symbols))
        prices = await prices_repo.list_latest(conn, list(symbols))
    infos = {
        a["symbol"]: AssetInfo(a["name"] or a["symbol"], int(a["sz_decimals"]), float(a["max_leverage"]),
                               bool(a["only_isolated"]), bool(a["is_delisted"]))
        for a in assets if a["sz_decimals"] is not None and a["max_leverage"] is not None
    }
    contexts = {
        c["symbol"]: AssetContext(funding=c["funding"] or 0.0, open_interest=c["open_interest"] or 0.0,
                                  mark_px=c["mark_px"], mid_px=c["mid_px"], oracle_px=c["oracle_px"],
                                  prev_day_px=c["prev_day_px"], day_ntl_vlm=c["day_ntl_vlm"], premium=c["premium"])
        for c in ctxs if c["mark_px"] is not None
    }
    ts = max([c["ts_ms"] or 0 for c in ctxs] + [p["ts_ms"] for p in prices] + [0])
    state.apply_snapshot(MarketSnapshot(ts_ms=ts, assets=infos, contexts=contexts))
    if prices and (newest := max(p["ts_ms"] for p in prices)) > state.last_mids_ms:
        # the latest price of each symbol is its mark (newer than a context's mark when the feed ran since)
        await state.apply_mids(Mids(ts_ms=newest, prices={p["symbol"]: p["price"] for p in prices}))
