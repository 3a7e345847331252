"""Validation at the edge: every bad value is rejected with its line, field and value."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nof0.kernel.decode import Rejected, decode_line, encode_event, validate_event
from nof0.kernel.events import EVENT_TYPES, Fill, MarketMeta, PriceTick
from tests.ingest.factories import T0, cycle, fill, tick

META = json.loads((Path(__file__).parents[1] / "fixtures" / "hyperliquid-meta-and-asset-ctxs.json").read_text())

GOOD_FILL = {"type": "fill", "model_id": "gpt-5", "symbol": "BTC", "side": "buy", "price": 111317.5, "size": 0.01,
             "fee_usd": 0.5, "ts_ms": T0, "oid": 1, "tid": 2}


def _reject(obj: dict | str, line: int = 7):
    raw = obj if isinstance(obj, str) else json.dumps(obj)
    with pytest.raises(Rejected) as exc:
        decode_line(raw, line)
    return exc.value.rejection


@pytest.mark.parametrize(
    ("change", "field", "value", "reason"),
    [
        ({"price": 0}, "price", 0, "must be a number > 0"),
        ({"price": -1.5}, "price", -1.5, "must be a number > 0"),
        ({"price": "1.5"}, "price", "1.5", "Expected `float`, got `str`"),
        ({"side": "long"}, "side", "long", "must be one of buy, sell"),
        ({"ts_ms": 1761452335}, "ts_ms", 1761452335, "must be milliseconds since epoch between 2000-01-01 and 2100-01-01"),
        ({"model_id": "gpt 5"}, "model_id", "gpt 5", "must be 1-64 characters of letters, digits and . _ - @ /"),
        ({"model_id": "a*"}, "model_id", "a*", "must be 1-64 characters of letters, digits and . _ - @ /"),
        ({"symbol": "x" * 65}, "symbol", "x" * 65, "must be 1-64 characters of letters, digits and . _ - @ /"),
        ({"confidence": 1.5}, "confidence", 1.5, "must be a number <= 1"),
        ({"leverage": 0}, "leverage", 0, "must be a number > 0"),
        ({"tid": -1}, "tid", -1, "must be a number >= 0"),
        ({"extra": 1}, "extra", 1, "unknown field"),
    ],
)
def test_bad_fields_are_named_with_their_value(change, field, value, reason):
    r = _reject({**GOOD_FILL, **change})
    assert (r.line, r.event_type, r.field, r.value) == (7, "fill", field, value)
    assert r.reason.startswith(reason)
    assert f"line 7 (fill): {field}=" in str(r)


def test_numbers_beyond_double_range_are_not_finite():
    r = _reject(json.dumps(GOOD_FILL).replace('"size": 0.01', '"size": 1e999'))
    assert (r.field, r.value, r.reason) == ("size", float("inf"), "must be a finite number")


def test_missing_field_and_bad_lines():
    r = _reject({k: v for k, v in GOOD_FILL.items() if k != "ts_ms"})
    assert (r.field, r.reason) == ("ts_ms", "is required")
    assert str(r) == "line 7 (fill): ts_ms: is required"
    assert _reject({"type": "tick"}).reason.startswith("unknown event type (known: model, symbol, price_tick")
    assert _reject({"price": 1}).field == "type"
    assert _reject("[1, 2]").reason == "each line must be one JSON object"
    assert _reject("{not json").reason.startswith("not valid JSON")
    assert _reject("{not json").raw == "{not json"


def test_cross_field_rules():
    trade = {"type": "trade", "id": "t1", "model_id": "m", "symbol": "BTC", "side": "long", "quantity": 1,
             "entry_price": 1, "exit_price": 2, "entry_time": 1761400000.5, "exit_time": 1761399999.5}
    assert _reject(trade).field == "exit_time"
    order = {"type": "sim_order", "trader_id": "m", "oid": 1, "symbol": "BTC", "side": "buy", "size": 1,
             "filled_size": 2, "status": "open", "ts_ms": T0}
    assert _reject(order).field == "filled_size"
    position = {"type": "position", "id": "p1", "model_id": "m", "symbol": "BTC", "side": "long", "entry_price": 1,
                "quantity": 1, "entry_ts_ms": T0, "updated_ts_ms": T0 - 1}
    assert (_reject(position).field, _reject(position).reason) == ("updated_ts_ms", f"is before entry_ts_ms {T0}")


@pytest.mark.parametrize(
    ("decision", "field", "reason"),
    [
        ({"signal": "buy"}, "decisions[0].signal", "must be one of long, short, close, hold"),
        ({}, "decisions[0].signal", "must be one of long, short, close, hold"),
        ({"signal": "long", "confidence": 2}, "decisions[0].confidence", "must be a number from 0 to 1"),
        ({"signal": "long", "leverage": 0}, "decisions[0].leverage", "must be a number > 0"),
        ({"signal": "long", "symbol": "B TC"}, "decisions[0].symbol", "must be a symbol"),
    ],
)
def test_decisions_are_checked(decision, field, reason):
    line = msgspec.json.encode(cycle(decisions=[decision])).decode()
    r = _reject(line)
    assert (r.event_type, r.field) == ("decision_cycle", field)
    assert r.reason.startswith(reason)


def test_decisions_keep_unknown_keys_verbatim():
    ev = decode_line(encode_event(cycle(decisions=[{"signal": "long", "symbol": "BTC", "confidence": 0.7,
                                                    "leverage": 10, "rationale": "trend", "size_usd": 250}])), 1)
    assert ev.decisions[0]["rationale"] == "trend" and ev.decisions[0]["size_usd"] == 250


def test_market_meta_as_hyperliquid_sends_it():
    ev = decode_line(json.dumps({"type": "market_meta", "provider": "hyperliquid", "ts_ms": T0,
                                 "meta_and_asset_ctxs": META}), 1)
    assert isinstance(ev, MarketMeta)
    universe, ctxs = ev.meta_and_asset_ctxs
    assert [u.name for u in universe.universe] == ["BTC", "ETH", "SOL", "DOGE", "MATIC", "kPEPE", "HYPE"]
    assert ctxs[4].midPx is None and universe.universe[4].isDelisted
    short = [META[0], META[1][:-1]]
    r = _reject({"type": "market_meta", "provider": "hyperliquid", "ts_ms": T0, "meta_and_asset_ctxs": short})
    assert r.field == "meta_and_asset_ctxs[1]" and "one asset context per universe entry" in r.reason
    bad = json.loads(json.dumps(META))
    bad[1][0]["markPx"] = "abc"
    r = _reject({"type": "market_meta", "provider": "hyperliquid", "ts_ms": T0, "meta_and_asset_ctxs": bad})
    assert (r.field, r.value) == ("meta_and_asset_ctxs[1][0].markPx", "abc")


def test_in_process_events_get_the_same_validation():
    assert validate_event(fill("buy", 100, 1, 1), 1) == fill("buy", 100.0, 1.0, 1)
    for bad, field in [(tick(price=float("nan")), "price"), (tick(price=float("inf")), "price"),
                       (fill("buy", 100, 1, 1, model_id="a b"), "model_id"),
                       (fill("buy", 100, 1, 1, exit_plan={"stop_loss": float("nan")}), "exit_plan")]:
        with pytest.raises(Rejected) as exc:
            validate_event(bad, 3)
        assert (exc.value.rejection.line, exc.value.rejection.field) == (3, field)
    with pytest.raises(Rejected, match="not an ingest event"):
        validate_event({"type": "price_tick"}, 1)


def test_every_event_type_round_trips_as_a_line():
    from tests.ingest import factories as f

    samples = [f.model(), f.symbol(), f.tick(), f.fill("buy", 1, 1, 1), f.trade(), f.position(), f.close(),
               f.snapshot(), f.message(), f.cycle(), f.trader_state(pause_until=None), f.sim_order(), f.sim_balance(), f.llm_call(prompt_tokens=10)]
    assert {type(s).__struct_config__.tag for s in samples} | {"market_meta"} == set(EVENT_TYPES)
    for s in samples:
        assert decode_line(encode_event(s), 1) == validate_event(s, 1)


@given(symbol=st.from_regex(r"[A-Za-z0-9._@/-]{1,64}", fullmatch=True),
       price=st.floats(min_value=1e-12, max_value=1e12, allow_nan=False, allow_infinity=False),
       ts=st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000))
def test_valid_ticks_decode_exactly(symbol, price, ts):
    ev = decode_line(encode_event(PriceTick(symbol=symbol, price=price, ts_ms=ts)), 1)
    assert (ev.symbol, ev.price, ev.ts_ms) == (symbol, price, ts)


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                 st.dictionaries(st.sampled_from(list(Fill.__struct_fields__) + ["type", "x"]),
                                 st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5),
                                           st.booleans()), max_size=12).map(json.dumps)))
def test_garbage_is_rejected_never_raised(raw):
    try:
        decode_line(raw, 1)
    except Rejected as exc:
        assert exc.rejection.reason and exc.rejection.line == 1


def test_every_example_line_in_the_events_doc_is_valid():
    import re

    doc = (Path(__file__).parents[2] / "docs" / "events.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", doc, re.S)
    lines = [line for block in blocks for line in block.splitlines() if line.strip()]
    seen = {type(decode_line(line, n)).__struct_config__.tag for n, line in enumerate(lines, 1)}
    assert seen == set(EVENT_TYPES)
