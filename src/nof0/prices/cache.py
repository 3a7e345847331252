"""Prices in Redis (design 3.2): ``nof0:price:latest:{symbol}`` and the ``nof0:crypto_prices`` map,
both rebuilt from ``price_latest`` (values in docs/redis-values.md)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.cache.write import set_json
from nof0.prices import repository as repo
from nof0.prices.payloads import crypto_price, crypto_prices_map
from nof0.runtime import Runtime

__all__ = ["publish_prices", "publish_read_prices"]


async def publish_prices(rt: Runtime, conn: AsyncConnection, symbols: list[Any]) -> None:
    """The latest price of each of ``symbols`` and the whole map, as Postgres holds them now (the rebuild)."""
    async with conn.transaction():
        rows = await repo.list_latest(conn)
    await _write(rt, rows, set(symbols))


async def publish_read_prices(rt: Runtime, conn: AsyncConnection, reads: list[Any]) -> None:
    """Once per tick batch, after its commit: ``reads`` are ``(price_latest rows, symbols)`` that the
    batch's own transaction read after moving the latest prices (``prices.pipeline.stage_ticks``): the
    batch's symbols were locked by that move, so they read what committed. Reading there instead of in
    a transaction of its own after the commit saves a feed batch two of its dozen round trips."""
    rows = reads[-1][0]
    await _write(rt, rows, {s for _, symbols in reads for s in symbols})


async def _write(rt: Runtime, rows: list[dict[str, Any]], wanted: set[str]) -> None:
    pipe = rt.redis.pipeline(transaction=False)
    for r in rows:
        if r["symbol"] in wanted:
            set_json(pipe, rt.keys.price_latest(r["symbol"]), crypto_price(r["symbol"], r["price"], r["ts_ms"]))
    set_json(pipe, rt.keys.crypto_prices(), crypto_prices_map(rows))
    await pipe.execute()
