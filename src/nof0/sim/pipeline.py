"""The paper-trading provider's state (design 2.4 "Simulator"): ``sim_order`` and ``sim_balance``
events are snapshotted to ``sim_orders`` / ``sim_balances`` (a newer ``(ts_ms, seq)`` replaces an older state)
and mirrored to ``nof0:sim:orders:{trader_id}`` / ``nof0:sim:balances:{trader_id}`` after commit.
"""

from __future__ import annotations

from typing import Any, Callable

from psycopg import AsyncConnection

from nof0.kernel.events import SimBalance, SimOrder
from nof0.kernel.stage import Staged
from nof0.runtime import Runtime
from nof0.sim import repository as repo
from nof0.sim.cache import publish_balances, publish_orders

__all__ = ["stage_sim_orders", "stage_sim_balances"]


def _newest(events: list[Any], key: Callable[[Any], Any]) -> list[dict[str, Any]]:
    # one row per key for the single upsert statement: the newest state (the first of equal ones)
    best: dict[Any, Any] = {}
    for e in events:
        k = key(e)
        if k not in best or (e.ts_ms, e.seq) > (best[k].ts_ms, best[k].seq):
            best[k] = e
    return [{f: getattr(e, f) for f in e.__struct_fields__} for e in best.values()]


async def stage_sim_orders(rt: Runtime, conn: AsyncConnection, events: list[SimOrder]) -> Staged:
    written = await repo.upsert_orders(conn, _newest(events, lambda e: (e.trader_id, e.oid)))
    staged = Staged(changed=len(written), duplicates=len(events) - len(written))
    return staged.then(publish_orders, *written) if written else staged


async def stage_sim_balances(rt: Runtime, conn: AsyncConnection, events: list[SimBalance]) -> Staged:
    written = await repo.upsert_balances(conn, _newest(events, lambda e: (e.trader_id, e.asset)))
    staged = Staged(changed=len(written), duplicates=len(events) - len(written))
    return staged.then(publish_balances, *written) if written else staged
