"""nof0.analytics.metrics against nof1's own analytics for grok-4 and against hand-computed inputs."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from nof0.analytics.metrics import (
    ConvoRef,
    Decision,
    PositionInterval,
    TradeFacts,
    compute_model_analytics,
    trade_facts_from_nof1,
)
from tests.conftest import FIXTURES

NOW_S = 1761452291.59581

TRADE_TABLES = (
    "fee_pnl_moves_breakdown_table",
    "winners_losers_breakdown_table",
    "longs_shorts_breakdown_table",
)
TRADE_BASED_OVERVIEW_FIELDS = (
    "total_trades",
    "avg_holding_period_mins",
    "median_holding_period_mins",
    "std_holding_period_mins",
    "avg_size_of_trade_notional",
    "median_size_of_trade_notional",
    "std_size_of_trade_notional",
    "avg_stop_loss_distance_pct",
    "avg_take_profit_distance_pct",
)
# The one field whose nof1 value no definition tried reproduces (see docs/analytics.md).
UNMATCHED = {("fee_pnl_moves_breakdown_table", "std_taker_fee")}


def close(actual: float, expected: float) -> bool:
    # abs_tol only matters when the expected value is an exact zero.
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


def assert_fields(table: dict, expected: dict) -> None:
    wrong = {k: (table[k], v) for k, v in expected.items() if not close(table[k], v)}
    assert not wrong, f"fields differ (actual, expected): {wrong}"


@pytest.fixture(scope="module")
def nof1_grok4() -> dict:
    return json.loads((FIXTURES / "analytics-grok-4.json").read_text())["analytics"][0]


@pytest.fixture(scope="module")
def grok4_trades() -> list[TradeFacts]:
    trades = json.loads((FIXTURES / "trades.json").read_text())["trades"]
    facts = [trade_facts_from_nof1(t) for t in trades if t["model_id"] == "grok-4"]
    assert len(facts) == 20
    return facts


@pytest.fixture(scope="module")
def grok4(grok4_trades) -> dict:
    return compute_model_analytics("grok-4", grok4_trades, now_s=NOW_S)


# ------------------------------------------------------------------------------------ nof1 parity


@pytest.mark.parametrize("table", TRADE_TABLES)
def test_trade_tables_match_nof1(grok4, nof1_grok4, table):
    expected = {k: v for k, v in nof1_grok4[table].items() if (table, k) not in UNMATCHED}
    assert_fields(grok4[table], expected)


def test_trade_based_overview_fields_match_nof1(grok4, nof1_grok4):
    nof1 = nof1_grok4["overall_trades_overview_table"]
    assert_fields(grok4["overall_trades_overview_table"], {k: nof1[k] for k in TRADE_BASED_OVERVIEW_FIELDS})


def test_last_trade_matches_nof1(grok4, nof1_grok4):
    assert grok4["last_trade_exit_time"] == nof1_grok4["last_trade_exit_time"]
    assert grok4["last_trade_doc_id"] == nof1_grok4["last_trade_doc_id"]


def test_std_taker_fee_is_the_sample_std_of_trade_commissions(grok4, grok4_trades, nof1_grok4):
    """Our documented definition, and the documented gap to nof1 (docs/analytics.md, "Unmatched")."""
    ours = grok4["fee_pnl_moves_breakdown_table"]["std_taker_fee"]
    assert close(ours, statistics.stdev([t.total_commission_dollars for t in grok4_trades]))
    assert close(ours, 7.343329649888222)
    nof1 = nof1_grok4["fee_pnl_moves_breakdown_table"]["std_taker_fee"]
    assert nof1 == 6.7249916766829 and round((ours / nof1 - 1) * 100, 2) == 9.19


def test_every_table_has_nof1_key_set(grok4_trades, nof1_grok4):
    analytics = compute_model_analytics(
        "grok-4",
        grok4_trades,
        decisions=[Decision(signal="hold", confidence=0.6, leverage=1, timestamp_s=1.0)],
        invocations_s=[1.0, 150.0],
        position_intervals=[PositionInterval(symbol="BTC", state="flat", start_s=1.0, end_s=150.0)],
        last_convo=ConvoRef(timestamp_s=150.0, doc_id="grok-4_150.0"),
        now_s=NOW_S,
    )
    assert analytics.keys() == nof1_grok4.keys()
    for name, value in nof1_grok4.items():
        if isinstance(value, dict):
            assert analytics[name].keys() == value.keys(), name


# --------------------------------------------------------------------------------- hand computed


def make_trade(**overrides) -> TradeFacts:
    fields = dict(
        id="m_1", model_id="m", symbol="BTC", side="long", quantity=1.0, entry_price=100.0, exit_price=100.0,
        entry_time_s=0.0, exit_time_s=60.0, realized_gross_pnl=0.0, realized_net_pnl=0.0,
        total_commission_dollars=0.0, entry_commission_dollars=0.0, exit_commission_dollars=0.0,
        leverage=1.0, confidence=0.5, exit_plan={},
    )
    fields.update(overrides)
    return TradeFacts(**fields)


# T1 long winner, T2 short loser, T3 long break-even (counted as a loser).
T1 = make_trade(
    id="m_1", side="long", quantity=10.0, entry_price=100.0, exit_price=110.0, entry_time_s=0.0,
    exit_time_s=3600.0, realized_gross_pnl=100.0, realized_net_pnl=98.0, total_commission_dollars=2.0,
    exit_plan={"stop_loss": 95.0, "profit_target": 110.0, "invalidation_condition": "..."},
)
T2 = make_trade(
    id="m_2", side="short", quantity=-5.0, entry_price=200.0, exit_price=210.0, entry_time_s=600.0,
    exit_time_s=1800.0, realized_gross_pnl=-50.0, realized_net_pnl=-53.0, total_commission_dollars=3.0,
    exit_plan={"stop_loss": 210.0, "profit_target": 140.0},
)
T3 = make_trade(
    id="m_3", side="long", quantity=2.0, entry_price=1000.0, exit_price=1000.5, entry_time_s=1000.0,
    exit_time_s=1600.0, realized_gross_pnl=1.0, realized_net_pnl=0.0, total_commission_dollars=1.0,
)
SQRT2 = math.sqrt(2)


def test_three_trades_by_hand():
    a = compute_model_analytics("m", [T3, T1, T2], now_s=5000.0)
    assert a["last_trade_exit_time"] == 3600.0 and a["last_trade_doc_id"] == "m_1"  # T1 exits last
    assert a["updated_at"] == 5000.0
    assert_fields(a["fee_pnl_moves_breakdown_table"], {
        "avg_gross_pnl": 17.0,  # (100 - 50 + 1) / 3
        "avg_net_pnl": 15.0,  # (98 - 53 + 0) / 3
        "avg_taker_fee": 2.0,  # (2 + 3 + 1) / 3
        "biggest_net_gain": 98.0,
        "biggest_net_loss": -53.0,
        "overall_pnl_with_fees": 45.0,
        "overall_pnl_without_fees": 51.0,
        "std_gross_pnl": math.sqrt(5817),  # (83^2 + 67^2 + 16^2) / 2
        "std_net_pnl": math.sqrt(5869),  # (83^2 + 68^2 + 15^2) / 2
        "std_taker_fee": 1.0,  # (0 + 1 + 1) / 2
        "total_fees_as_pct_of_pnl": 600 / 45,  # 6 / 45 x 100: fees over the pnl after fees
        "total_fees_paid": 6.0,
    })
    assert_fields(a["winners_losers_breakdown_table"], {
        "win_rate": 100 / 3,
        "avg_winners_net_pnl": 98.0, "std_winners_net_pnl": 0.0,
        "avg_winners_notional": 1000.0, "std_winners_notional": 0.0,
        "avg_winners_holding_period": 60.0, "std_winners_holding_period": 0.0,
        "avg_losers_net_pnl": -26.5, "std_losers_net_pnl": 26.5 * SQRT2,
        "avg_losers_notional": 1500.0, "std_losers_notional": 500 * SQRT2,  # 1000 and 2000
        "avg_losers_holding_period": 15.0, "std_losers_holding_period": 5 * SQRT2,  # 20 and 10 min
    })
    assert_fields(a["longs_shorts_breakdown_table"], {
        "num_long_trades": 2, "num_short_trades": 1, "long_short_trades_ratio": 2 / 3,
        "avg_longs_net_pnl": 49.0, "std_longs_net_pnl": 49 * SQRT2,
        "avg_longs_notional": 1500.0, "std_longs_notional": 500 * SQRT2,
        "avg_longs_holding_period": 35.0, "std_longs_holding_period": 25 * SQRT2,  # 60 and 10 min
        "avg_shorts_net_pnl": -53.0, "std_shorts_net_pnl": 0.0,
        "avg_shorts_notional": 1000.0, "std_shorts_notional": 0.0,
        "avg_shorts_holding_period": 20.0, "std_shorts_holding_period": 0.0,
    })
    assert_fields(a["overall_trades_overview_table"], {
        "total_trades": 3,
        "avg_holding_period_mins": 30.0, "median_holding_period_mins": 20.0,
        "std_holding_period_mins": math.sqrt(700),  # (30^2 + 10^2 + 20^2) / 2
        "avg_size_of_trade_notional": 4000 / 3, "median_size_of_trade_notional": 1000.0,
        "std_size_of_trade_notional": 1000 / math.sqrt(3),  # (6/9 x 1e6) / 2
        # nof1 fills neither for any model (nof1-api.md)
        "avg_size_of_trade_portfolio_pct": 0.0, "std_size_of_trade_portfolio_pct": 0.0,
        "avg_stop_loss_distance_pct": 5.0,  # T1 5/100, T2 10/200; T3 has no plan
        "avg_take_profit_distance_pct": 20.0,  # T1 10/100, T2 60/200
        "avg_convo_leverage": 0.0, "median_convo_leverage": 0.0,  # no decisions given
    })


def test_one_trade_has_zero_stds():
    a = compute_model_analytics("m", [T1], now_s=1.0)
    for name in ("fee_pnl_moves_breakdown_table", "winners_losers_breakdown_table",
                 "longs_shorts_breakdown_table", "overall_trades_overview_table"):
        stds = {k: v for k, v in a[name].items() if k.startswith("std_")}
        assert stds and all(v == 0 for v in stds.values()), (name, stds)
    assert a["overall_trades_overview_table"]["median_holding_period_mins"] == 60.0
    assert a["fee_pnl_moves_breakdown_table"]["total_fees_as_pct_of_pnl"] == 200 / 98  # 2 / 98 x 100
    assert a["winners_losers_breakdown_table"]["win_rate"] == 100.0
    assert a["longs_shorts_breakdown_table"]["long_short_trades_ratio"] == 1.0


def test_no_trades_gives_zeros_with_every_key(nof1_grok4):
    a = compute_model_analytics("m", [], now_s=7.0)
    assert a.keys() == nof1_grok4.keys()
    assert a["id"] == a["model_id"] == "m" and a["updated_at"] == 7.0
    assert a["last_trade_exit_time"] == 0 and a["last_convo_timestamp"] == 0
    assert a["last_trade_doc_id"] is None and a["last_convo_doc_id"] is None
    for name, value in nof1_grok4.items():
        if isinstance(value, dict):
            assert a[name].keys() == value.keys(), name
            assert all(v == 0 for v in a[name].values()), (name, a[name])


def test_negative_gross_pnl_gives_zero_fee_pct():
    a = compute_model_analytics("m", [T2], now_s=1.0)
    assert a["fee_pnl_moves_breakdown_table"]["total_fees_as_pct_of_pnl"] == 0


def test_fee_pct_is_zero_when_fees_turn_a_gross_profit_into_no_profit():
    # T3: gross +1, fees 1, net 0. The pnl the percentage is taken of is the net one (nof1-api.md).
    table = compute_model_analytics("m", [T3], now_s=1.0)["fee_pnl_moves_breakdown_table"]
    assert table["overall_pnl_without_fees"] == 1.0 and table["overall_pnl_with_fees"] == 0.0
    assert table["total_fees_as_pct_of_pnl"] == 0


def test_portfolio_pct_fields_are_zero_as_nof1_publishes_them():
    for trades in ([T1], [T1, T2, T3]):
        table = compute_model_analytics("m", trades, now_s=1.0)["overall_trades_overview_table"]
        assert table["avg_size_of_trade_portfolio_pct"] == 0 and table["std_size_of_trade_portfolio_pct"] == 0


DECISIONS = [
    Decision(signal="long", confidence=0.6, leverage=2, timestamp_s=0, convo_leverage=10),
    Decision(signal="long", confidence=0.8, leverage=4, timestamp_s=60, convo_leverage=5),
    Decision(signal="short", confidence=0.7, leverage=3, timestamp_s=120, convo_leverage=20),
    Decision(signal="hold", confidence=0.5, leverage=1, timestamp_s=180, convo_leverage=50),  # not an entry
    Decision(signal="hold", confidence=0.7, leverage=1, timestamp_s=240),
    Decision(signal="close", confidence=0.9, leverage=1, timestamp_s=300),
]
INTERVALS = [
    PositionInterval(symbol="BTC", state="long", start_s=0, end_s=600),  # 10 min
    PositionInterval(symbol="BTC", state="flat", start_s=600, end_s=900),  # 5 min
    PositionInterval(symbol="ETH", state="short", start_s=0, end_s=900),  # 15 min
]


def test_signals_table_by_hand():
    a = compute_model_analytics("m", [], decisions=DECISIONS, position_intervals=INTERVALS, now_s=1.0)
    assert_fields(a["signals_breakdown_table"], {
        "total_signals": 6,
        "num_long_signals": 2, "num_short_signals": 1, "num_close_signals": 1, "num_hold_signals": 2,
        "long_signal_pct": 100 / 3, "short_signal_pct": 50 / 3, "close_signal_pct": 50 / 3,
        "hold_signal_pct": 100 / 3,
        "long_short_ratio": 2.0,
        # confidences 0.6 0.8 0.7 0.5 0.7 0.9: mean 0.7, squared deviations sum 0.10, / 5
        "avg_confidence": 0.7, "median_confidence": 0.7, "std_confidence": math.sqrt(0.02),
        "avg_confidence_long": 0.7, "std_confidence_long": math.sqrt(0.02),
        "avg_confidence_short": 0.7, "std_confidence_short": 0.0,
        "avg_confidence_close": 0.9, "std_confidence_close": 0.0,
        "avg_confidence_hold": 0.6, "std_confidence_hold": math.sqrt(0.02),
        # leverages 2 4 3 1 1 1: mean 2, median 1.5, squared deviations sum 8, / 5
        "avg_leverage": 2.0, "median_leverage": 1.5, "std_leverage": math.sqrt(1.6),
        "avg_leverage_long": 3.0, "std_leverage_long": SQRT2,
        "avg_leverage_short": 3.0, "std_leverage_short": 0.0,
        "mins_long_combined": 10.0, "mins_short_combined": 15.0, "mins_flat_combined": 5.0,
        "pct_mins_long_combined": 100 / 3, "pct_mins_short_combined": 50.0, "pct_mins_flat_combined": 50 / 3,
    })
    # convo leverage of the entry decisions only: 10, 5, 20
    assert_fields(
        a["overall_trades_overview_table"], {"avg_convo_leverage": 35 / 3, "median_convo_leverage": 10.0}
    )


def test_invocations_table_by_hand():
    a = compute_model_analytics("m", [], invocations_s=[0.0, 60.0, 180.0, 150.0], now_s=1.0)
    # sorted 0 60 150 180: breaks 1, 1.5, 0.5 minutes
    assert_fields(a["invocation_breakdown_table"], {
        "num_invocations": 4,
        "min_invocation_break_mins": 0.5, "max_invocation_break_mins": 1.5,
        "avg_invocation_break_mins": 1.0, "std_invocation_break_mins": 0.5,  # (0 + 0.25 + 0.25) / 2
    })


def test_one_invocation_has_no_breaks():
    a = compute_model_analytics("m", [], invocations_s=[42.0], now_s=1.0)
    assert a["invocation_breakdown_table"] == {
        "num_invocations": 1, "min_invocation_break_mins": 0.0, "max_invocation_break_mins": 0.0,
        "avg_invocation_break_mins": 0.0, "std_invocation_break_mins": 0.0,
    }


def test_last_convo_is_reported():
    a = compute_model_analytics("m", [], last_convo=ConvoRef(timestamp_s=12.5, doc_id="m_12.5"), now_s=1.0)
    assert a["last_convo_timestamp"] == 12.5 and a["last_convo_doc_id"] == "m_12.5"


# ------------------------------------------------------------------------------------- validation


def test_trade_of_another_model_is_rejected():
    with pytest.raises(ValueError, match="belongs to model 'm'"):
        compute_model_analytics("other", [T1], now_s=1.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("side", "buy", "'side'"),
        ("entry_price", "1.0", "'entry_price'"),
        ("entry_price", float("nan"), "'entry_price'"),
        ("exit_time", -1.0, "before entry_time"),
    ],
)
def test_bad_nof1_trade_is_rejected(field, value, message):
    trade = json.loads((FIXTURES / "trades.json").read_text())["trades"][0]
    trade[field] = value
    with pytest.raises(ValueError, match=message):
        trade_facts_from_nof1(trade)


def test_missing_required_trade_field_is_named():
    trade = json.loads((FIXTURES / "trades.json").read_text())["trades"][0]
    del trade["realized_net_pnl"]
    with pytest.raises(ValueError, match="realized_net_pnl"):
        trade_facts_from_nof1(trade)


def test_bad_decision_and_interval_are_rejected():
    with pytest.raises(ValueError, match="'buy'"):
        compute_model_analytics(
            "m", [], decisions=[Decision(signal="buy", confidence=0.5, leverage=1, timestamp_s=0)], now_s=1.0
        )
    with pytest.raises(ValueError, match="before start"):
        compute_model_analytics(
            "m", [], position_intervals=[PositionInterval(symbol="BTC", state="long", start_s=9, end_s=1)],
            now_s=1.0,
        )
