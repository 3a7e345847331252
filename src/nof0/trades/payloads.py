"""nof1 shapes of trades and positions, built from Postgres rows.

Used by the pipelines (Redis values) and by the API's Postgres fallback, so both produce the same
bytes for the same facts. Mark-to-market fields (current price, unrealized PnL, margin) are computed
here from a mark price, never stored (design 2.2 positions, 2.4 step 3).
"""

from __future__ import annotations

from typing import Any, Mapping

from nof0.timefmt import human_utc, ms_to_s

__all__ = ["trade_json", "position_json", "unrealized_pnl", "signed_quantity"]


def signed_quantity(side: str, quantity: float) -> float:
    """nof1 signs quantities: negative for shorts."""
    q = abs(quantity)
    return -q if side == "short" else q


def trade_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``trades`` row -> nof1's trade object (every field, nof1's units)."""
    return {
        "id": row["id"],
        "trade_id": row.get("trade_id"),
        "model_id": row["model_id"],
        "symbol": row["symbol"],
        "side": row["side"],
        "trade_type": row.get("trade_type"),
        "quantity": row.get("quantity"),
        "leverage": row.get("leverage"),
        "confidence": row.get("confidence"),
        "entry_price": row.get("entry_price"),
        "entry_time": ms_to_s(row.get("entry_ts_ms")),
        "entry_human_time": human_utc(row.get("entry_ts_ms")),
        "entry_sz": row.get("entry_sz"),
        "entry_tid": row.get("entry_tid"),
        "entry_oid": row.get("entry_oid"),
        "entry_crossed": row.get("entry_crossed"),
        "entry_liquidation": row.get("entry_liquidation"),
        "entry_commission_dollars": row.get("entry_commission_dollars"),
        "entry_closed_pnl": row.get("entry_closed_pnl"),
        "exit_price": row.get("exit_price"),
        "exit_time": ms_to_s(row.get("exit_ts_ms")),
        "exit_human_time": human_utc(row.get("exit_ts_ms")),
        "exit_sz": row.get("exit_sz"),
        "exit_tid": row.get("exit_tid"),
        "exit_oid": row.get("exit_oid"),
        "exit_crossed": row.get("exit_crossed"),
        "exit_liquidation": row.get("exit_liquidation"),
        "exit_commission_dollars": row.get("exit_commission_dollars"),
        "exit_closed_pnl": row.get("exit_closed_pnl"),
        "exit_plan": row.get("exit_plan") if row.get("exit_plan") is not None else {},
        "realized_gross_pnl": row.get("realized_gross_pnl"),
        "realized_net_pnl": row.get("realized_net_pnl"),
        "total_commission_dollars": row.get("total_commission_dollars"),
    }


def unrealized_pnl(side: str, quantity: float, entry_price: float, mark: float) -> float:
    return (mark - entry_price) * signed_quantity(side, quantity)


def position_json(row: Mapping[str, Any], mark_price: float | None) -> dict[str, Any]:
    """An open ``positions`` row + a mark price -> nof1's position object.

    ``margin`` is notional at the mark over leverage; without a mark the entry price stands in
    (the position is then shown flat). Extra facts kept in ``metadata`` (risk_usd, closed_pnl,
    liquidation_price, tp/sl oids, ...) are passed through, after the computed fields: a metadata key
    never replaces a value computed from the row and the mark (ingest refuses such keys, see
    ``nof0.kernel.events.RESERVED_POSITION_METADATA``; rows stored before that are shown right too).
    """
    meta = dict(row.get("metadata") or {})
    mark = mark_price if mark_price is not None else row["entry_price"]
    qty = signed_quantity(row["side"], row["quantity"])
    lev = row.get("leverage") or 1
    out: dict[str, Any] = {
        "entry_oid": row.get("entry_oid"),
        "risk_usd": meta.pop("risk_usd", None),
        "confidence": row.get("confidence"),
        "exit_plan": row.get("exit_plan") if row.get("exit_plan") is not None else {},
        "entry_time": ms_to_s(row["entry_ts_ms"]),
        "symbol": row["symbol"],
        "entry_price": row["entry_price"],
        "margin": abs(qty) * mark / lev,
        "leverage": row.get("leverage"),
        "quantity": qty,
        "current_price": mark,
        "unrealized_pnl": unrealized_pnl(row["side"], row["quantity"], row["entry_price"], mark),
        "closed_pnl": meta.pop("closed_pnl", None),
        "commission": row.get("commission"),
    }
    for key, value in meta.items():
        out.setdefault(key, value)
    return out
