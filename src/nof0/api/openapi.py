"""The OpenAPI 3.1 document served at ``/openapi.json``, written by hand from nof1-api.md.

Kept beside the routes it describes; a test checks that every route of the app appears here.
"""

from __future__ import annotations

from typing import Any

from nof0.api.params import LAST_HOURLY_MARKER, POSITIONS_LIMIT, IntParam

__all__ = ["openapi_document"]

_NUM = {"type": "number"}
_INT = {"type": "integer"}
_STR = {"type": "string"}
_MS = {"type": "integer", "description": "milliseconds since epoch"}
_SECONDS = {"type": "number", "description": "seconds since epoch"}
_OBJ = {"type": "object"}


def _obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, **extra}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_ERROR = _obj({"error": _STR, "detail": _STR, "parameter": _STR}, required=["error", "detail"])

_POSITION = _obj({
    "symbol": _STR, "entry_oid": _nullable(_INT), "risk_usd": _nullable(_NUM), "confidence": _nullable(_NUM),
    "exit_plan": _OBJ, "entry_time": _SECONDS, "entry_price": _NUM, "margin": _NUM, "leverage": _nullable(_NUM),
    "quantity": {"type": "number", "description": "signed: negative for shorts"}, "current_price": _NUM,
    "unrealized_pnl": _NUM, "closed_pnl": _nullable(_NUM), "commission": _nullable(_NUM),
}, description="An open position, marked to market when the payload is built; extra facts pass through.")

_TRADE = _obj({
    "id": _STR, "trade_id": _nullable(_STR), "model_id": _STR, "symbol": _STR, "side": _STR,
    "trade_type": _nullable(_STR), "quantity": {"type": "number", "description": "signed: negative for shorts"},
    "leverage": _nullable(_NUM), "confidence": _nullable(_NUM),
    **{f"{leg}_{f}": s for leg in ("entry", "exit") for f, s in (
        ("price", _nullable(_NUM)), ("time", _nullable(_SECONDS)),
        ("human_time", _nullable({"type": "string", "description": "UTC YYYY-MM-DD HH:MM:SS.ffffff"})),
        ("sz", _nullable(_NUM)), ("tid", _nullable(_INT)), ("oid", _nullable(_INT)), ("crossed", {}),
        ("liquidation", {}), ("commission_dollars", _nullable(_NUM)), ("closed_pnl", _nullable(_NUM)))},
    "exit_plan": _OBJ, "realized_gross_pnl": _nullable(_NUM), "realized_net_pnl": _nullable(_NUM),
    "total_commission_dollars": _nullable(_NUM),
})

_ACCOUNT_RECORD = _obj({
    "id": {"type": "string", "description": "{model_id}_{hourly marker}"}, "model_id": _STR,
    "timestamp": _SECONDS, "realized_pnl": _NUM, "total_unrealized_pnl": _NUM, "dollar_equity": _NUM,
    "sharpe_ratio": _NUM, "cum_pnl_pct": {"type": "number", "description": "percent since inception"},
    "since_inception_minute_marker": _INT, "since_inception_hourly_marker": _INT,
    "positions": {"type": "object", "additionalProperties": _POSITION},
})

_LEADER = _obj({k: _NUM for k in ("num_trades", "sharpe", "win_dollars", "num_losses", "lose_dollars",
                                   "return_pct", "equity", "num_wins")} | {"id": _STR})

_ANALYTICS = _obj({"id": _STR, "model_id": _STR, "updated_at": _SECONDS},
                  description="nof1 ModelAnalytics: seven breakdown tables (see nof1-api.md, docs/analytics.md)",
                  additionalProperties=True)


_TRADER = _obj({
    "id": _STR, "name": _STR,
    "status": {"enum": ["running", "paused", None], "description": "null: not traded here (e.g. imported)"},
    "pause_until": _nullable(_SECONDS), "last_decision_at": _nullable(_SECONDS),
    "next_decision_at": _nullable(_SECONDS), "decision_interval_s": _nullable(_NUM),
    "last_cycle_number": _nullable(_INT), "llm_model": _nullable(_STR), "exchange_provider": _nullable(_STR),
    "market_provider": _nullable(_STR), "allocation_pct": _nullable(_NUM),
    "budget": _nullable(_obj({"tokens_today": _INT, "cost_usd_today": _NUM, "calls_today": _INT,
                              "daily_budget_usd": _NUM, "daily_budget_tokens": _INT},
                             description="model calls of the current UTC day beside the daily budgets")),
})


def _with_time(props: dict[str, Any]) -> dict[str, Any]:
    return _obj({**props, "serverTime": _MS})


_CACHE_HEADERS = {
    "ETag": {"schema": _STR, "description": "version of the body; send it back in If-None-Match"},
    "Cache-Control": {"schema": _STR, "description": "public, max-age from the endpoint's TTL class"},
}


def _get(summary: str, body: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
         not_found: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "OK (gzip when accepted and the body is large)", "headers": _CACHE_HEADERS,
                "content": {"application/json": {"schema": body}}},
        "304": {"description": "Not Modified: If-None-Match names the current ETag"},
        "503": {"description": "the data source cannot answer", "content": {"application/json": {"schema": _ERROR}}},
    }
    if params:
        responses["400"] = {"description": "a bad query parameter (named in the body)",
                            "content": {"application/json": {"schema": _ERROR}}}
    if not_found:
        responses["404"] = {"description": "unknown model", "content": {"application/json": {"schema": _ERROR}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    return {"get": op}


def _int_query(param: IntParam, description: str) -> dict[str, Any]:
    return {"name": param.name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": param.minimum, "maximum": param.maximum}}


def openapi_document() -> dict[str, Any]:
    model_id = {"name": "model_id", "in": "path", "required": True, "schema": _STR}
    return {
        "openapi": "3.1.0",
        "info": {"title": "nof0 arena API", "version": "1",
                 "description": "nof1.ai Alpha Arena wire format; times in seconds except serverTime and "
                                "price timestamps (milliseconds)."},
        "paths": {
            "/api/crypto-prices": _get("Latest price per symbol", _with_time(
                {"prices": {"type": "object", "additionalProperties": _obj(
                    {"symbol": _STR, "price": _NUM, "timestamp": _MS})}})),
            "/api/positions": _get("Open positions per model, keyed by symbol", _with_time(
                {"accountTotals": {"type": "array", "items": _obj(
                    {"model_id": _STR, "positions": {"type": "object", "additionalProperties": _POSITION}})}}),
                params=[_int_query(POSITIONS_LIMIT, "at most this many models")]),
            "/api/account-totals": _get("Hourly account series per model since its inception", _with_time(
                {"accountTotals": {"type": "array", "items": _ACCOUNT_RECORD}, "lastHourlyMarkerRead": _INT}),
                params=[_int_query(LAST_HOURLY_MARKER, "only records from this hourly marker on, this one included")]),
            "/api/trades": _get("Closed trades, newest exit first (each model's latest 100)", _with_time(
                {"trades": {"type": "array", "items": _TRADE}})),
            "/api/since-inception-values": _get("Starting capital and inception per model", _with_time(
                {"sinceInceptionValues": {"type": "array", "items": _obj(
                    {"id": _nullable(_STR), "nav_since_inception": _NUM, "inception_date": _SECONDS,
                     "num_invocations": _INT, "model_id": _STR})}})),
            "/api/leaderboard": _get("Leaderboard (no serverTime, as nof1)", _obj(
                {"leaderboard": {"type": "array", "items": _LEADER}})),
            "/api/analytics": _get("Analytics of every model", _with_time(
                {"analytics": {"type": "array", "items": _ANALYTICS}})),
            "/api/analytics/{model_id}": {**_get("Analytics of one model (empty list until computed)", _with_time(
                {"analytics": {"type": "array", "items": _ANALYTICS}}), not_found=True),
                "parameters": [model_id]},
            "/api/conversations": _get(
                "Decision cycles, newest first (nof1's per-cycle items, each with its messages), then per-model "
                "message lists of messages outside any cycle", _with_time(
                {"conversations": {"type": "array", "items": _obj({
                    "model_id": _STR, "id": _STR, "cycle_id": _INT, "run_id": _nullable(_STR),
                    "timestamp": _SECONDS, "inserted_at": _SECONDS, "user_prompt": _STR, "cot_trace": _STR,
                    "cot_trace_summary": _STR, "success": {"type": "boolean"}, "error": _nullable(_STR),
                    "llm_response": {"type": "object", "additionalProperties": _obj({
                        "coin": _STR, "signal": {"enum": ["buy_to_enter", "sell_to_enter", "hold", "close_position"]},
                        "quantity": _NUM, "leverage": _NUM, "profit_target": _NUM, "stop_loss": _NUM,
                        "invalidation_condition": _STR, "confidence": _NUM, "risk_usd": _NUM,
                        "justification": _STR})},
                    "messages": {
                        "type": "array", "items": _obj({"role": {"enum": ["system", "user", "assistant"]},
                                                        "content": _STR, "timestamp": _nullable(_SECONDS)})}},
                    required=["model_id"])}})),
            "/api/traders": _get("Each model's trader status (not a nof1 endpoint; docs/api.md)", _with_time(
                {"traders": {"type": "array", "items": _TRADER}})),
            "/api/stream": {"get": {
                "summary": "Committed changes as Server-Sent Events (docs/api.md): event change "
                           "{kind, models, symbols, data}, id = the changes stream entry id; hello on connect, "
                           "reset when the changes after Last-Event-ID are gone",
                "parameters": [{"name": "Last-Event-ID", "in": "header", "required": False, "schema": _STR,
                                "description": "resume after this event id"}],
                "responses": {"200": {"description": "an event stream", "content": {"text/event-stream": {}}},
                              "503": {"description": "Redis unreachable: poll the endpoints instead",
                                      "content": {"application/json": {"schema": _ERROR}}}}}},
            "/healthz": {"get": {"summary": "The process answers", "responses": {"200": {"description": "alive"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (docs/metrics.md)", "responses": {
                "200": {"description": "text exposition format", "content": {"text/plain": {}}}}}},
            "/readyz": {"get": {"summary": "Postgres and Redis reachable, migrations current", "responses": {
                "200": {"description": "ready"},
                "503": {"description": "not ready; reason names each failed check"}}}},
            "/": {"get": {"summary": "The arena dashboard (HTML; reads the endpoints above)", "responses": {
                "200": {"description": "the page", "content": {"text/html": {}}}}}},
            "/dashboard/{name}": {"get": {"summary": "The dashboard's stylesheet and scripts", "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": _STR}], "responses": {
                "200": {"description": "the file"}, "404": {"description": "no such file"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
        },
    }
