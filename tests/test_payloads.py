"""Payload builders reproduce nof1's captured shapes from rows."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from nof0.analytics.payloads import since_inception_entry
from nof0.timefmt import dt_to_s, human_utc, ms_to_s, s_to_ms
from nof0.trades.payloads import position_json, trade_json
from tests.conftest import FIXTURES


def _row_from_trade(t: dict) -> dict:
    row = {k: v for k, v in t.items() if not k.endswith("_time") and not k.endswith("_human_time")}
    row["entry_ts_ms"] = s_to_ms(t["entry_time"])
    row["exit_ts_ms"] = s_to_ms(t["exit_time"])
    return row


def test_trade_json_round_trips_every_captured_trade():
    trades = json.loads((FIXTURES / "trades.json").read_text())["trades"]
    for t in trades:
        assert trade_json(_row_from_trade(t)) == t


def test_human_time_and_seconds():
    assert human_utc(1761314029249) == "2025-10-24 13:53:49.249000"
    assert ms_to_s(1761314029249) == 1761314029.249


def test_inception_date_keeps_microseconds():
    dt = datetime(2025, 10, 17, 22, 0, 9, 834185, tzinfo=timezone.utc)
    assert dt_to_s(dt) == 1760738409.834185
    entry = since_inception_entry({"id": "x", "nav_since_inception": 10000.0, "inception_at": dt,
                                   "num_invocations": 0, "model_id": "gpt-5"})
    assert entry["inception_date"] == 1760738409.834185


def test_position_json_marks_to_market():
    row = {"symbol": "BTC", "side": "short", "quantity": 0.13, "entry_price": 107067.9, "leverage": 15,
           "entry_ts_ms": 1760740073000, "entry_oid": 1, "confidence": 0.62, "exit_plan": {"stop_loss": 1},
           "commission": 2.0, "metadata": {"risk_usd": 300, "closed_pnl": -6.26}}
    p = position_json(row, 106969.5)
    assert p["quantity"] == -0.13
    assert abs(p["unrealized_pnl"] - 12.792) < 1e-9
    assert abs(p["margin"] - 0.13 * 106969.5 / 15) < 1e-9
    assert p["risk_usd"] == 300 and p["closed_pnl"] == -6.26 and p["entry_time"] == 1760740073
