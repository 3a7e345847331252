"""SQL of instruments and venue metadata: ``symbols``, ``market_assets``, ``market_asset_ctx``
(design 2.2, 2.4 "Market Metadata"). Never commits.

Metadata rows carry the venue's response time (``ts_ms``); an older response never overwrites a
newer one, so responses replayed in any order leave the newest.
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.db.arrays import column_arrays

__all__ = ["list_known_symbols", "upsert_symbols", "upsert_assets", "upsert_asset_ctxs", "list_assets", "list_asset_ctxs"]


async def list_known_symbols(conn: AsyncConnection, symbols: Sequence[str]) -> set[str]:
    cur = await conn.execute("SELECT symbol FROM symbols WHERE symbol = ANY(%b::text[])", (list(symbols),))
    return {r["symbol"] for r in await cur.fetchall()}


async def upsert_symbols(conn: AsyncConnection, symbols: Sequence[str], quotes: Sequence[str | None]) -> set[str]:
    """Register symbols; a None quote currency is USD for a new symbol and keeps a known one's."""
    cur = await conn.execute(
        """
        INSERT INTO symbols (symbol, quote_currency)
        SELECT s, coalesce(q, 'USD') FROM unnest(%b::text[], %b::text[]) AS v(s, q)
        ON CONFLICT (symbol) DO NOTHING
        RETURNING symbol
        """,
        (list(symbols), list(quotes)),
    )
    changed = {r["symbol"] for r in await cur.fetchall()}
    cur = await conn.execute(
        """
        UPDATE symbols SET quote_currency = v.q
          FROM unnest(%b::text[], %b::text[]) AS v(s, q)
         WHERE symbols.symbol = v.s AND v.q IS NOT NULL AND symbols.quote_currency IS DISTINCT FROM v.q
        RETURNING symbols.symbol
        """,
        (list(symbols), list(quotes)),
    )
    return changed | {r["symbol"] for r in await cur.fetchall()}


async def upsert_assets(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    """rows: provider, symbol, name, sz_decimals, max_leverage, only_isolated, margin_table_id,
    is_delisted, ts_ms. Returns the number of rows written."""
    cur = await conn.execute(
        """
        INSERT INTO market_assets AS a (provider, symbol, name, sz_decimals, max_leverage, only_isolated,
                                        margin_table_id, is_delisted, ts_ms)
        SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::int[], %b::float8[], %b::bool[], %b::int[],
                             %b::bool[], %b::bigint[])
        ON CONFLICT (provider, symbol) DO UPDATE
           SET name = EXCLUDED.name, sz_decimals = EXCLUDED.sz_decimals, max_leverage = EXCLUDED.max_leverage,
               only_isolated = EXCLUDED.only_isolated, margin_table_id = EXCLUDED.margin_table_id,
               is_delisted = EXCLUDED.is_delisted, ts_ms = EXCLUDED.ts_ms, updated_at = now()
         WHERE (a.ts_ms IS NULL OR EXCLUDED.ts_ms > a.ts_ms)
           AND (a.name, a.sz_decimals, a.max_leverage, a.only_isolated, a.margin_table_id, a.is_delisted, a.ts_ms)
               IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.sz_decimals, EXCLUDED.max_leverage, EXCLUDED.only_isolated,
                                 EXCLUDED.margin_table_id, EXCLUDED.is_delisted, EXCLUDED.ts_ms)
        """,
        column_arrays(rows, ("provider", "symbol", "name", "sz_decimals", "max_leverage", "only_isolated",
                             "margin_table_id", "is_delisted", "ts_ms")),
    )
    return cur.rowcount


async def upsert_asset_ctxs(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    """rows: provider, symbol, funding, open_interest, oracle_px, mark_px, mid_px, impact_pxs,
    prev_day_px, day_ntl_vlm, day_base_vlm, premium, ts_ms. Returns the number of rows written."""
    cols = ("provider", "symbol", "funding", "open_interest", "oracle_px", "mark_px", "mid_px", "impact_pxs",
            "prev_day_px", "day_ntl_vlm", "day_base_vlm", "premium", "ts_ms")
    params = column_arrays(rows, cols, json_columns=("impact_pxs",))
    cur = await conn.execute(
        """
        INSERT INTO market_asset_ctx AS c (provider, symbol, funding, open_interest, oracle_px, mark_px, mid_px,
                                           impact_pxs, prev_day_px, day_ntl_vlm, day_base_vlm, premium, ts_ms)
        SELECT * FROM unnest(%b::text[], %b::text[], %b::float8[], %b::float8[], %b::float8[], %b::float8[],
                             %b::float8[], %b::jsonb[], %b::float8[], %b::float8[], %b::float8[], %b::float8[],
                             %b::bigint[])
        ON CONFLICT (provider, symbol) DO UPDATE
           SET funding = EXCLUDED.funding, open_interest = EXCLUDED.open_interest, oracle_px = EXCLUDED.oracle_px,
               mark_px = EXCLUDED.mark_px, mid_px = EXCLUDED.mid_px, impact_pxs = EXCLUDED.impact_pxs,
               prev_day_px = EXCLUDED.prev_day_px, day_ntl_vlm = EXCLUDED.day_ntl_vlm,
               day_base_vlm = EXCLUDED.day_base_vlm, premium = EXCLUDED.premium, ts_ms = EXCLUDED.ts_ms,
               updated_at = now()
         WHERE (c.ts_ms IS NULL OR EXCLUDED.ts_ms > c.ts_ms)
        """,
        params,
    )
    return cur.rowcount


async def list_assets(conn: AsyncConnection, provider: str, symbols: Sequence[str]) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """
        SELECT provider, symbol, name, sz_decimals, max_leverage, only_isolated, margin_table_id, is_delisted, ts_ms
          FROM market_assets WHERE provider = %s AND symbol = ANY(%b::text[]) ORDER BY symbol
        """,
        (provider, list(symbols)),
    )
    return await cur.fetchall()


async def list_asset_ctxs(conn: AsyncConnection, provider: str, symbols: Sequence[str]) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """
        SELECT provider, symbol, funding, open_interest, oracle_px, mark_px, mid_px, impact_pxs, prev_day_px,
               day_ntl_vlm, day_base_vlm, premium, ts_ms
          FROM market_asset_ctx WHERE provider = %s AND symbol = ANY(%b::text[]) ORDER BY symbol
        """,
        (provider, list(symbols)),
    )
    return await cur.fetchall()
