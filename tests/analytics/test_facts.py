"""Turning Postgres rows into the analytics inputs: decisions, position minutes, equity lookup."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from nof0.analytics.facts import group_facts, parse_decisions, position_intervals


def test_valid_decisions_parse_with_defaults():
    raw = json.dumps([
        {"signal": "long", "symbol": "BTC", "confidence": 0.8, "leverage": 10, "reasoning": "breakout"},
        {"signal": "hold", "confidence": 0.5},
    ])
    entries, errors = parse_decisions("m", 1, 100.0, raw)
    assert errors == []
    assert [(e.signal, e.symbol, e.confidence, e.leverage) for e in entries] == [
        ("long", "BTC", 0.8, 10.0), ("hold", None, 0.5, 1.0)
    ]


def test_invalid_decisions_are_named_and_the_others_kept():
    raw = json.dumps([
        {"signal": "long", "confidence": 0.8, "leverage": 10},
        {"signal": "buy", "confidence": 0.5},
        {"signal": "short", "confidence": 1.5},
        {"signal": "close", "confidence": "high"},
        {"signal": "hold", "confidence": 0.5, "leverage": 0},
    ])
    entries, errors = parse_decisions("m", 7, 100.0, raw)
    assert [e.signal for e in entries] == ["long"]
    assert len(errors) == 4
    assert all("model 'm' cycle 7" in e for e in errors)
    assert "decisions[1]" in errors[0] and "$.signal" in errors[0] and "'buy'" in errors[0]
    assert "decisions[2]" in errors[1] and "$.confidence" in errors[1] and "1.5" in errors[1]
    assert "decisions[3]" in errors[2] and "$.confidence" in errors[2] and '"high"' in errors[2]
    assert "decisions[4]" in errors[3] and "$.leverage" in errors[3]


def test_decisions_that_are_not_a_list():
    for raw in ("null", '{"signal": "long"}', "[1, 2]"):
        entries, errors = parse_decisions("m", 1, 100.0, raw)
        assert entries == [] and errors, raw


def test_intervals_cover_the_window_for_every_symbol():
    positions = [
        ("BTC", "long", 0.0, 600.0),  # starts before the window: clipped at 100
        ("BTC", "short", 600.0, None),  # open: runs to now, clipped at the window end
        ("ETH", "long", 2000.0, 3000.0),  # entirely after the window: ignored
    ]
    out = position_intervals(positions, {"BTC", "ETH", "SOL"}, 100.0, 1000.0, now_s=5000.0)
    assert [(i.symbol, i.state, i.start_s, i.end_s) for i in out] == [
        ("BTC", "long", 100.0, 600.0), ("BTC", "short", 600.0, 1000.0),
        ("ETH", "flat", 100.0, 1000.0),
        ("SOL", "flat", 100.0, 1000.0),
    ]


def test_overlapping_positions_do_not_count_twice():
    positions = [("BTC", "long", 0.0, 500.0), ("BTC", "short", 400.0, 700.0), ("BTC", "long", 450.0, 480.0)]
    out = position_intervals(positions, {"BTC"}, 0.0, 1000.0, now_s=1000.0)
    assert [(i.state, i.start_s, i.end_s) for i in out] == [
        ("long", 0.0, 500.0), ("short", 500.0, 700.0), ("flat", 700.0, 1000.0)
    ]


def test_an_empty_window_has_no_intervals():
    assert position_intervals([("BTC", "long", 0.0, 10.0)], {"BTC"}, 5.0, 5.0, now_s=9.0) == []


spans = st.lists(
    st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["long", "short"]),
              st.floats(0, 1000), st.one_of(st.none(), st.floats(0, 1000))),
    max_size=20,
)


@given(spans, st.floats(0, 500), st.floats(0, 1000))
def test_minutes_always_add_up_to_symbols_times_window(positions, start, length):
    positions = [(s, side, a, b if b is None or b >= a else a) for s, side, a, b in positions]
    out = position_intervals(positions, {"A", "B", "C"}, start, start + length, now_s=1200.0)
    total = sum(i.end_s - i.start_s for i in out)
    assert abs(total - 3 * length) <= 1e-9 * max(1.0, 3 * length)
    for symbol in "ABC":
        mine = [i for i in out if i.symbol == symbol]
        assert all(a.end_s <= b.start_s for a, b in zip(mine, mine[1:]))  # no overlap


def test_group_facts_takes_the_newest_message_of_any_thread():
    facts = group_facts(["m", "n"], [], [], [], [("m", 2_000), ("m", 5_500), ("m", 3_000)])
    assert facts["m"].last_convo.timestamp_s == 5.5 and facts["m"].last_convo.doc_id == "m_5.5"
    assert facts["n"].last_convo is None


def test_decision_without_confidence_counts_as_a_signal_only():
    """docs/events.md's example: a hold without confidence is accepted by ingest and by analytics."""
    from nof0.analytics.metrics import Decision, compute_model_analytics

    raw = json.dumps([{"signal": "short", "symbol": "BTC", "confidence": 0.62, "leverage": 15},
                      {"signal": "hold", "symbol": "ETH"}])
    entries, errors = parse_decisions("m", 42, 100.0, raw)
    assert errors == [] and [e.confidence for e in entries] == [0.62, None]
    decisions = [Decision(signal=e.signal, confidence=e.confidence, leverage=e.leverage, timestamp_s=100.0)
                 for e in entries]
    table = compute_model_analytics("m", [], decisions=decisions, now_s=200.0)["signals_breakdown_table"]
    assert table["total_signals"] == 2 and table["num_hold_signals"] == 1
    assert table["avg_confidence"] == 0.62 and table["avg_confidence_hold"] == 0
