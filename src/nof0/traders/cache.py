"""Trader state in Redis (design 3.2): ``nof0:trader:{id}:state``, a hash mirroring the
``trader_state`` row (JSON objects as JSON strings, times as ISO 8601; absent values omitted)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from nof0.cache.write import encode, multi, replace_hash
from nof0.runtime import Runtime
from nof0.traders import repository as repo

__all__ = ["publish_trader_states", "state_hash"]


def _field(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return encode(value).decode()
    return str(value)


def state_hash(row: dict[str, Any]) -> dict[str, str]:
    return {k: _field(v) for k, v in row.items() if v is not None}


async def publish_trader_states(rt: Runtime, conn: AsyncConnection, trader_ids: list[Any]) -> None:
    async with conn.transaction():
        rows = await repo.list_trader_states(conn, sorted(set(trader_ids)))
    pipe = multi(rt.redis)
    for row in rows:
        replace_hash(pipe, rt.keys.trader_state(row["trader_id"]), state_hash(row))
    await pipe.execute()
