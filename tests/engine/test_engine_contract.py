"""The decision contract: where the JSON is found, what is validated, what fails a cycle."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from nof0.engine.traders.contract import STORED_SIGNAL, ContractError, parse_reply

GOOD = {"cot_trace_summary": "short BTC", "decisions": {
    "BTC": {"signal": "sell_to_enter", "quantity": 0.1, "leverage": 10, "profit_target": 98000, "stop_loss": 105000,
            "invalidation_condition": "4h close above 106k", "confidence": 0.7, "risk_usd": 300,
            "justification": "below EMA20", "extra_key": "kept out"},
    "ETH": {"signal": "hold"}}}


def test_plain_json():
    r = parse_reply(json.dumps(GOOD))
    assert r.cot_trace == "" and r.summary == "short BTC" and list(r.decisions) == ["BTC", "ETH"]
    btc = r.decisions["BTC"]
    assert (btc.signal, btc.quantity, btc.leverage, btc.stop_loss, btc.confidence) == (
        "sell_to_enter", 0.1, 10, 105000, 0.7)


def test_reasoning_before_the_json_is_the_chain_of_thought():
    r = parse_reply("BTC lost its 20 EMA; {not json} ETH flat.\n" + json.dumps(GOOD) + "\n")
    assert r.cot_trace == "BTC lost its 20 EMA; {not json} ETH flat."


def test_the_last_decision_object_wins_over_an_example_in_the_reasoning():
    example = {"decisions": {"SOL": {"signal": "hold"}}}
    r = parse_reply("The format is " + json.dumps(example) + ". My answer: " + json.dumps(GOOD))
    assert list(r.decisions) == ["BTC", "ETH"]


def test_fenced_json():
    r = parse_reply("Thinking.\n```json\n" + json.dumps(GOOD, indent=2) + "\n```")
    assert r.cot_trace == "Thinking." and r.decisions["ETH"].signal == "hold"


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("I will hold everything today.", "no JSON object"),
    ('{"decisions": {"BTC": {"signal": "buy_to_enter", "quantity": 0.1', "cut off or malformed"),
    ('{"decisions": {"BTC": {"signal": "moon"}}}', "decisions.BTC.signal"),
    ('{"decisions": {"BTC": {"signal": "hold", "confidence": 62}}}', "decisions.BTC.confidence"),
    ('{"decisions": {"BTC": {"signal": "buy_to_enter", "leverage": -3}}}', "decisions.BTC.leverage"),
    ('{"decisions": {"BTC USD": {"signal": "hold"}}}', "not a coin symbol"),
    ('{"decisions": {"BTC\\n": {"signal": "hold"}}}', "not a coin symbol"),  # `$` would let a newline through
    ('{"decisions": {"BTC": {"signal": "hold", "coin": "ETH"}}}', "decisions.BTC.coin"),
    ('{"decisions": ["BTC"]}', "decisions must map coins"),
])
def test_invalid_replies_name_the_problem(text, message):
    with pytest.raises(ContractError, match=message):
        parse_reply(text)


def test_stored_signals_are_nof1s_four():
    assert STORED_SIGNAL == {"buy_to_enter": "long", "sell_to_enter": "short", "hold": "hold",
                             "close_position": "close"}


@given(st.text(max_size=300))
def test_any_text_parses_or_fails_with_a_contract_error(text):
    try:
        parse_reply(text)
    except ContractError as exc:
        assert str(exc)
