"""The fill book: positions, round trips and equity from fills, the same however the ledger is split."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nof0.cache.keys import validate_part
from nof0.trades.book import FillBook, fill_order
from nof0.trades.rows import NAMESPACE, derived_id
from tests.ingest.factories import T0, fill


def _fold(fills, capital=10_000.0):
    book = FillBook("m1", capital)
    return book, book.apply_all(sorted(fills, key=fill_order))


def test_open_extend_reduce_flip_close():
    book, out = _fold([
        fill("buy", 100, 2, 1, fee=1.0),    # long 2 @ 100
        fill("buy", 110, 2, 2, fee=1.0),    # long 4 @ 105, commission 2
        fill("sell", 120, 1, 3, fee=0.5),   # reduce 1: +15 gross, fees 0.5 + 0.5
        fill("sell", 90, 5, 4, fee=2.5),    # close 3 (-45 gross, fees 1.5 + 1.5), open short 2 @ 90 (fee 1.0)
        fill("buy", 80, 2, 5, fee=1.0),     # close the short: +20 gross, fees 1.0 + 1.0
    ])
    trades = sorted(out.trades.values(), key=lambda t: t["exit_ts_ms"])
    assert [(t["side"], t["quantity"], t["entry_price"], t["exit_price"], t["realized_gross_pnl"],
             t["entry_commission_dollars"], t["exit_commission_dollars"], t["realized_net_pnl"]) for t in trades] == [
        ("long", 1.0, 105.0, 120.0, 15.0, 0.5, 0.5, 14.0),
        ("long", 3.0, 105.0, 90.0, -45.0, 1.5, 1.5, -48.0),
        ("short", -2.0, 90.0, 80.0, 20.0, 1.0, 1.0, 18.0),
    ]
    for t in trades:  # nof1's identities
        assert t["realized_net_pnl"] == t["entry_closed_pnl"] + t["exit_closed_pnl"]
        assert t["total_commission_dollars"] == t["entry_commission_dollars"] + t["exit_commission_dollars"]
        assert t["entry_sz"] == t["exit_sz"] == abs(t["quantity"]) and t["trade_type"] == t["side"]
    assert trades[0]["entry_tid"] == 1 and trades[0]["exit_tid"] == 3 and trades[2]["entry_tid"] == 4
    assert trades[0]["trade_id"] == f"{(T0 + 1) / 1000!r}_BTC_{(T0 + 3) / 1000!r}_m1"
    assert book.state.lots == {}
    assert all(p["status"] == "closed" for p in out.positions.values()) and len(out.positions) == 2
    assert out.snapshots[T0 + 1] == (9999.0, -1.0, 0.0)
    assert out.snapshots[T0 + 2] == (10018.0, -2.0, 20.0)  # long 4 @ 105 marked at 110
    assert out.snapshots[T0 + 5] == (10000.0 + 14 - 48 + 18, 14 - 48 + 18, 0.0)


def test_dust_never_leaves_a_phantom_position():
    _, out = _fold([fill("buy", 100, 0.1, 1), fill("buy", 100, 0.2, 2), fill("sell", 101, 0.3, 3)])
    assert len(out.trades) == 1 and next(iter(out.positions.values()))["status"] == "closed"


def test_ids_are_deterministic_and_key_safe():
    m = "m" * 64  # the longest model id: trade ids must still fit a Redis key part
    fills = [fill("buy", 100, 1, 1, model_id=m), fill("sell", 101, 1, 2, model_id=m)]
    a = FillBook(m, 10_000.0).apply_all(fills)
    b = FillBook(m, 5_000.0).apply_all(fills)
    assert list(a.trades) == list(b.trades) and len(a.trades) == 1
    for trade_id in a.trades:
        assert validate_part("trade_id", trade_id) == trade_id


fills_strategy = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.sampled_from([90.0, 99.5, 100.0, 101.25, 110.0]),
        st.sampled_from([0.1, 0.2, 0.3, 0.5, 1.0, 1.5]),
        st.sampled_from([0.0, 0.01, 0.05]),
        st.sampled_from(["BTC", "ETH"]),
        st.integers(min_value=0, max_value=3),  # milliseconds after the previous fill: ties included
    ),
    min_size=1, max_size=40,
)


def _fills(spec):
    out, dt = [], 0
    for tid, (side, price, size, fee, symbol, gap) in enumerate(spec, 1):
        dt += gap
        out.append(fill(side, price, size, tid, dt, symbol=symbol, fee=fee))
    return out


@settings(max_examples=150, deadline=None)
@given(spec=fills_strategy, cuts=st.lists(st.integers(min_value=1, max_value=39), max_size=4))
def test_incremental_equals_whole_ledger_bit_for_bit(spec, cuts):
    fills = _fills(spec)
    whole_book, whole = _fold(fills)
    # the same fills applied in chunks, the state stored as JSON (as in fill_books.state) between them
    merged_trades, merged_positions, merged_snapshots = {}, {}, {}
    state = None
    bounds = sorted({c for c in cuts if c < len(fills)}) + [len(fills)]
    start = 0
    for end in bounds:
        book = FillBook.load("m1", json.loads(json.dumps(state))) if state else FillBook("m1", 10_000.0)
        out = book.apply_all(fills[start:end])
        merged_trades.update(out.trades)
        merged_positions.update(out.positions)
        merged_snapshots.update(out.snapshots)
        state, start = book.dump(), end
    assert merged_trades == whole.trades
    assert merged_positions == whole.positions
    assert merged_snapshots == whole.snapshots
    assert state == whole_book.dump()


@settings(max_examples=150, deadline=None)
@given(spec=fills_strategy)
def test_positions_and_equity_add_up(spec):
    fills = _fills(spec)
    book, out = _fold(fills)
    for symbol in ("BTC", "ETH"):
        net = sum((f.size if f.side == "buy" else -f.size) for f in fills if f.symbol == symbol)
        lot = book.state.lots.get(symbol)
        held = 0.0 if lot is None else (lot.qty if lot.side == "long" else -lot.qty)
        assert held == pytest.approx(net, abs=1e-9)
    for t in out.trades.values():
        assert t["realized_gross_pnl"] == pytest.approx((t["exit_price"] - t["entry_price"]) * t["quantity"])
    fees = sum(f.fee_usd for f in fills)
    gross = sum(t["realized_gross_pnl"] for t in out.trades.values())
    equity, realized, unrealized = book.equity()
    assert realized == pytest.approx(gross - fees, abs=1e-9)  # every fee paid is realized
    assert equity == pytest.approx(10_000.0 + realized + unrealized)
    assert out.snapshots[max(out.snapshots)] == book.equity()


_NO_SURROGATES = st.characters(blacklist_categories=("Cs",))  # text a producer can send


@given(st.text(_NO_SURROGATES, min_size=1, max_size=80),
       st.lists(st.one_of(st.integers(0, 2**63), st.text(_NO_SURROGATES, max_size=10)), max_size=3))
def test_derived_ids_are_uuid5_of_the_facts(model_id, parts):
    """Ids stored by earlier versions stay the ids of the same facts: uuid5 of ``model_id|parts``."""
    expected = uuid.uuid5(NAMESPACE, "|".join([model_id, *map(str, parts)]))
    assert derived_id(model_id, *parts) == f"{model_id[:27]}_{expected}"
