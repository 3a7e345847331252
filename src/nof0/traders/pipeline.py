"""Traders (design 2.4 "Trader State"): ``model`` events register a model (trader) and its account;
``trader_state`` events write ``trader_state`` (step 1) and mirror it to ``nof0:trader:{id}:state``
after commit (step 2).

A model event that changes a starting capital makes the fill books computed with the old one stale:
their ledgers are folded again in the same transaction (``trades.pipeline.refold_stale_books``).
"""

from __future__ import annotations

import uuid
from typing import Any

from msgspec import UNSET
from psycopg import AsyncConnection

from nof0.kernel.events import ModelEvent, TraderState
from nof0.kernel.stage import Staged
from nof0.runtime import Runtime
from nof0.timefmt import s_to_dt
from nof0.trades.pipeline import refold_stale_books
from nof0.trades.rows import NAMESPACE
from nof0.traders import repository as repo
from nof0.traders.cache import publish_trader_states
from nof0.traders.fencing import fence_events

__all__ = ["stage_models", "stage_trader_states", "default_inception_id"]

_STATE_OPTIONAL = ("allocation_pct", "cooldown", "risk_guards", "last_decision_at", "pause_until")


def default_inception_id(model_id: str) -> uuid.UUID:
    """A model registered without nof1's since-inception id gets one derived from its id (replay-safe)."""
    return uuid.uuid5(NAMESPACE, f"inception|{model_id}")


def _merge(events: list[Any], key: str, optional: tuple[str, ...], unset: Any) -> list[dict[str, Any]]:
    """One row per id: later events win; an optional field a later event leaves out keeps the earlier value."""
    merged: dict[str, dict[str, Any]] = {}
    for ev in events:
        row = merged.setdefault(getattr(ev, key), {})
        for name in ev.__struct_fields__:
            value = getattr(ev, name)
            if name not in optional or value is not unset:
                row[name] = value
    return list(merged.values())


async def stage_models(rt: Runtime, conn: AsyncConnection, events: list[ModelEvent]) -> Staged:
    optional = ("display_name", "starting_capital_usd", "inception_ts", "inception_id", "trader_config")
    rows = _merge(events, "id", optional, None)
    models = [{"id": r["id"], "display_name": r.get("display_name"), "trader_config": r.get("trader_config")}
              for r in rows]
    accounts = [
        {
            "model_id": r["id"],
            "starting_capital_usd": r.get("starting_capital_usd"),
            "inception_at": s_to_dt(r["inception_ts"]) if r.get("inception_ts") is not None else None,
            "inception_id": r.get("inception_id"),
            "default_inception_id": default_inception_id(r["id"]),
        }
        for r in rows
    ]
    changed = await repo.upsert_models(conn, models) | await repo.upsert_accounts(conn, accounts)
    staged = Staged(changed=len(changed), duplicates=len(events) - len(changed))
    staged.models = set(changed)
    return staged.merge(await refold_stale_books(conn, sorted(changed))) if changed else staged


async def stage_trader_states(rt: Runtime, conn: AsyncConnection, events: list[TraderState]) -> Staged:
    events, refused = await fence_events(conn, events, lambda e: e.trader_id)  # a stale lease writes nothing
    if not events:
        return Staged(rejected=refused)
    rows = _merge(events, "trader_id", _STATE_OPTIONAL, UNSET)
    for row in rows:
        for name in _STATE_OPTIONAL:
            row[f"has_{name}"] = name in row
            row.setdefault(name, None)
    changed = await repo.upsert_trader_states(conn, rows)
    staged = Staged(changed=len(changed), duplicates=len(events) - len(changed), rejected=refused)
    return staged.then(publish_trader_states, *sorted(changed)) if changed else staged
