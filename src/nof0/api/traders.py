"""``/api/traders``: each model's trader status for the dashboard (not a nof1 endpoint).

One entry per registered model, in id order:

* ``status``: ``"paused"`` while ``trader_state.pause_until`` is in the future, ``"running"`` for any
  other model with a trader state, ``null`` for a model that is not traded here (an imported one).
* ``last_decision_at``: ``trader_state.last_decision_at``, else the model's latest decision cycle.
* ``next_decision_at``: last decision + the trader's ``decision_interval`` (``models.trader_config``),
  not before ``pause_until`` while paused; ``null`` without a last decision or an interval.
* ``budget``: the model calls of the current UTC day (``llm_calls``: tokens, USD, calls) beside the
  trader's daily budgets (0 = none); ``null`` for a model that is not traded here.

Times are seconds since the epoch, as nof1's wire format gives them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nof0.timefmt import dt_to_s

__all__ = ["traders_payload", "trader_json"]


def _latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


def trader_json(row: dict[str, Any], now_ms: int) -> dict[str, Any]:
    pause_s = dt_to_s(row["pause_until"])
    paused = pause_s is not None and pause_s * 1000 > now_ms
    status = ("paused" if paused else "running") if row["has_state"] else None
    last_s = dt_to_s(_latest(row["last_decision_at"], row["last_cycle_at"]))
    interval = row["decision_interval_s"]
    next_s = None
    if last_s is not None and interval is not None and interval > 0:
        next_s = last_s + interval
        if paused and pause_s is not None and pause_s > next_s:
            next_s = pause_s
    return {
        "id": row["id"],
        "name": row["display_name"],
        "status": status,
        "pause_until": pause_s,
        "last_decision_at": last_s,
        "next_decision_at": next_s,
        "decision_interval_s": interval,
        "last_cycle_number": row["last_cycle_number"],
        "llm_model": row["llm_model"] or None,
        "exchange_provider": row["exchange_provider"],
        "market_provider": row["market_provider"],
        "allocation_pct": row["allocation_pct"],
        "budget": {
            "tokens_today": row["tokens_today"], "cost_usd_today": row["cost_usd_today"],
            "calls_today": row["calls_today"], "daily_budget_usd": row["daily_budget_usd"] or 0.0,
            "daily_budget_tokens": row["daily_budget_tokens"] or 0,
        } if row["has_state"] else None,
    }


def traders_payload(rows: list[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    return {"traders": [trader_json(r, now_ms) for r in rows], "serverTime": now_ms}
