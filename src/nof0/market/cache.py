"""Venue metadata in Redis (design 3.2): ``nof0:market:asset:{provider}:{symbol}`` and
``nof0:market:ctx:{provider}:{symbol}``, each the stored row as JSON (docs/redis-values.md)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.cache.write import set_json
from nof0.market import repository as repo
from nof0.runtime import Runtime

__all__ = ["publish_market"]


async def publish_market(rt: Runtime, conn: AsyncConnection, items: list[Any]) -> None:
    """items: (provider, symbol) pairs whose metadata was refreshed."""
    by_provider: dict[str, set[str]] = {}
    for provider, symbol in items:
        by_provider.setdefault(provider, set()).add(symbol)
    pipe = rt.redis.pipeline(transaction=False)
    for provider, symbols in sorted(by_provider.items()):
        async with conn.transaction():
            assets = await repo.list_assets(conn, provider, sorted(symbols))
            ctxs = await repo.list_asset_ctxs(conn, provider, sorted(symbols))
        for row in assets:
            set_json(pipe, rt.keys.market_asset(provider, row["symbol"]), row)
        for row in ctxs:
            set_json(pipe, rt.keys.market_ctx(provider, row["symbol"]), row)
    await pipe.execute()
