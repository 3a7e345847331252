"""Instruments and venue metadata (design 2.4 "Market Metadata"): ``symbol`` events register
instruments; a ``market_meta`` event (Hyperliquid ``metaAndAssetCtxs``) registers its symbols, upserts
``market_assets`` and ``market_asset_ctx`` (step 1) and publishes the per-symbol keys after commit
(step 2). Step 3 (risk thresholds) is the engine's, fed by these keys.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.db.arrays import last_by_key
from nof0.kernel.events import AssetCtx, MarketMeta, SymbolEvent, UniverseEntry
from nof0.kernel.stage import Staged
from nof0.market import repository as repo
from nof0.market.cache import publish_market
from nof0.runtime import Runtime

__all__ = ["stage_symbols", "stage_market_meta", "asset_row", "ctx_row"]


async def stage_symbols(rt: Runtime, conn: AsyncConnection, events: list[SymbolEvent]) -> Staged:
    merged: dict[str, str | None] = {}
    for ev in events:  # a later event's quote wins; an absent quote keeps the earlier one
        merged[ev.symbol] = ev.quote_currency if ev.quote_currency is not None else merged.get(ev.symbol)
    changed = await repo.upsert_symbols(conn, list(merged), list(merged.values()))
    return Staged(changed=len(changed), duplicates=len(events) - len(changed))


def _num(text: str | None) -> float | None:
    return None if text is None else float(text)


def asset_row(provider: str, ts_ms: int, entry: UniverseEntry) -> dict[str, Any]:
    return {
        "provider": provider, "symbol": entry.name, "name": entry.name, "sz_decimals": entry.szDecimals,
        "max_leverage": entry.maxLeverage, "only_isolated": entry.onlyIsolated,
        "margin_table_id": entry.marginTableId, "is_delisted": entry.isDelisted, "ts_ms": ts_ms,
    }


def ctx_row(provider: str, ts_ms: int, symbol: str, ctx: AssetCtx) -> dict[str, Any]:
    return {
        "provider": provider, "symbol": symbol, "funding": _num(ctx.funding), "open_interest": _num(ctx.openInterest),
        "oracle_px": _num(ctx.oraclePx), "mark_px": _num(ctx.markPx), "mid_px": _num(ctx.midPx),
        "impact_pxs": [float(p) for p in ctx.impactPxs] if ctx.impactPxs is not None else None,
        "prev_day_px": _num(ctx.prevDayPx), "day_ntl_vlm": _num(ctx.dayNtlVlm), "day_base_vlm": _num(ctx.dayBaseVlm),
        "premium": _num(ctx.premium), "ts_ms": ts_ms,
    }


async def stage_market_meta(rt: Runtime, conn: AsyncConnection, events: list[MarketMeta]) -> Staged:
    staged = Staged()
    # one response per provider and time (a replayed response is the same facts), oldest first
    for ev in sorted(last_by_key(events, lambda e: (e.provider, e.ts_ms)), key=lambda e: (e.provider, e.ts_ms)):
        universe, ctxs = ev.meta_and_asset_ctxs
        names = [u.name for u in universe.universe]
        registered = await repo.upsert_symbols(conn, names, [None] * len(names))
        written = await repo.upsert_assets(conn, [asset_row(ev.provider, ev.ts_ms, u) for u in universe.universe])
        written += await repo.upsert_asset_ctxs(
            conn, [ctx_row(ev.provider, ev.ts_ms, u.name, c) for u, c in zip(universe.universe, ctxs)]
        )
        if written or registered:
            staged.changed += 1
            staged.then(publish_market, *((ev.provider, n) for n in names))
        else:
            staged.duplicates += 1
    staged.duplicates += len(events) - staged.changed - staged.duplicates
    return staged
