"""Prices in Redis (design 3.2): ``nof0:price:latest:{symbol}`` and the ``nof0:crypto_prices`` map,
both rebuilt from ``price_latest`` (values in docs/redis-values.md)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.cache.write import set_json
from nof0.prices import repository as repo
from nof0.prices.payloads import crypto_price, crypto_prices_map
from nof0.runtime import Runtime

__all__ = ["publish_prices"]


async def publish_prices(rt: Runtime, conn: AsyncConnection, symbols: list[Any]) -> None:
    """Once per batch: the latest price of each symbol of the batch, and the whole map."""
    async with conn.transaction():
        rows = await repo.list_latest(conn)
    wanted = set(symbols)
    pipe = rt.redis.pipeline(transaction=False)
    for r in rows:
        if r["symbol"] in wanted:
            set_json(pipe, rt.keys.price_latest(r["symbol"]), crypto_price(r["symbol"], r["price"], r["ts_ms"]))
    set_json(pipe, rt.keys.crypto_prices(), crypto_prices_map(rows))
    await pipe.execute()
