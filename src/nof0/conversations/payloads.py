"""nof1 shapes of ``/api/conversations``: a message, and one decision cycle (nof1-api.md: ``user_prompt``,
``cot_trace``, ``cot_trace_summary``, ``llm_response`` keyed by coin, ``cycle_id``, times in seconds), which
also carries its ``messages`` so the dashboards that read per-model message lists render it too."""

from __future__ import annotations

from typing import Any, Mapping

from nof0.timefmt import dt_to_s, ms_to_s

__all__ = ["message_json", "cycle_json", "llm_response"]

# stored signal -> nof1's wire signal
_WIRE = {"long": "buy_to_enter", "short": "sell_to_enter", "hold": "hold", "close": "close_position"}
# the contract's fields of a decision, in nof1's order; the engine's own keys (status, reason, oid) stay out
_CONTRACT = ("quantity", "leverage", "profit_target", "stop_loss", "invalidation_condition", "confidence",
             "risk_usd", "justification")


def message_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"role": row["role"], "content": row["content"], "timestamp": ms_to_s(row.get("ts_ms"))}


def llm_response(decisions: Any) -> dict[str, Any]:
    """The model's decisions keyed by coin, in nof1's signal words (a decision without a symbol is left out)."""
    out: dict[str, Any] = {}
    for d in decisions if isinstance(decisions, list) else ():
        symbol = d.get("symbol") if isinstance(d, dict) else None
        if not symbol:
            continue
        item = {"coin": symbol, "signal": _WIRE.get(d.get("signal"), d.get("signal"))}
        item.update({k: d[k] for k in _CONTRACT if k in d})
        out[symbol] = item
    return out


def cycle_json(row: Mapping[str, Any]) -> dict[str, Any]:
    messages = row.get("messages") or []
    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    executed = dt_to_s(row["executed_at"])
    return {
        "id": f"{row['model_id']}_{row['cycle_number']}",
        "model_id": row["model_id"],
        "cycle_id": row["cycle_number"],
        "run_id": row.get("run_id"),
        "timestamp": executed,
        "inserted_at": dt_to_s(row["finished_at"]) if row.get("finished_at") is not None else executed,
        "user_prompt": user,
        "cot_trace": row.get("cot_trace") or "",
        "cot_trace_summary": row.get("cot_trace_summary") or "",
        "llm_response": llm_response(row.get("decisions")),
        "success": bool(row.get("success")),
        "error": row.get("error_message"),
        "messages": [message_json(m) for m in messages],
    }
