"""SQL of the cache rebuild (design 3.4): who owns a key of each design family (3.2), read in one
snapshot, so a rebuild publishes every model's, symbol's, venue's and trader's keys. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from psycopg import AsyncConnection

__all__ = ["Owners", "list_owners", "list_guarded_trades"]


class Owners(NamedTuple):
    models: list[str]
    symbols: list[str]  # with a latest price
    market: list[tuple[str, str]]  # (provider, symbol) with metadata or a context
    traders: list[str]  # with a trader_state row
    sim_traders: list[str]  # with simulator orders or balances
    # with an open position: the models whose positions hash holds something (a flat model's hash is deleted)
    positioned: Sequence[str] = ()


async def list_owners(conn: AsyncConnection) -> Owners:
    async def column(query: str) -> list:
        cur = await conn.execute(query)
        return [tuple(r.values()) if len(r) > 1 else next(iter(r.values())) for r in await cur.fetchall()]

    return Owners(
        models=await column("SELECT id FROM models ORDER BY id"),
        symbols=await column("SELECT symbol FROM price_latest ORDER BY symbol"),
        market=await column(
            "SELECT provider, symbol FROM market_assets UNION SELECT provider, symbol FROM market_asset_ctx ORDER BY 1, 2"),
        traders=await column("SELECT trader_id FROM trader_state ORDER BY trader_id"),
        sim_traders=await column(
            "SELECT trader_id FROM sim_orders UNION SELECT trader_id FROM sim_balances ORDER BY 1"),
        positioned=await column("SELECT DISTINCT model_id FROM positions WHERE status = 'open' ORDER BY 1"),
    )


async def list_guarded_trades(conn: AsyncConnection, guard_ms: int) -> list[tuple[str, int]]:
    """(trade id, guard time left in ms) of the trades stored less than ``guard_ms`` ago: their
    idempotency guards (``nof0:ingest:trade:{id}``) would still be there."""
    cur = await conn.execute(
        """
        SELECT id, %(guard_ms)s - (extract(epoch FROM now() - created_at) * 1000)::bigint AS left_ms
          FROM trades
         WHERE created_at > now() - make_interval(secs => %(guard_ms)s / 1000.0)
         ORDER BY id
        """,
        {"guard_ms": guard_ms},
    )
    return [(r["id"], r["left_ms"]) for r in await cur.fetchall() if r["left_ms"] > 0]
