"""The paper-trading rules (engine.md "Exchange providers / sim") against numbers computed by hand."""

from __future__ import annotations

import pytest

from nof0.engine.exchange.sim import matching as m
from nof0.engine.exchange.sim.rules import (
    Account, Fees, Position, apply_fill, available, equity, fee, funding_payment, initial_margin, is_liquidatable,
    liquidation_price, maintenance_margin, margin_used, round_price, round_size, taker_price,
)

T = 1_761_001_200_000  # an hour boundary (2025-10-20 23:00 UTC)
FEES = Fees(taker=0.00045, maker=0.00015, slippage_bps=2)
ETH = m.Market("ETH", 4000.0, sz_decimals=4, max_leverage=25, funding=0.0000125)
BTC = m.Market("BTC", 100_000.0, sz_decimals=5, max_leverage=40)


def approx(x: float):
    return pytest.approx(x, rel=1e-12, abs=1e-12)


def req(symbol="ETH", side="buy", size=0.1, kind="market", **kw) -> m.Request:
    return m.Request(symbol=symbol, side=side, size=size, kind=kind, **kw)


def account(cash: float = 10_000.0) -> Account:
    return Account("t1", cash, funding_ms=T)


# ------------------------------------------------------------------------------------------------ rounding


@pytest.mark.parametrize("px, szd, expected", [
    (111_317.46, 5, 111_317.0),  # an integer price is always valid
    (3456.789, 4, 3456.8),  # 5 significant figures
    (187.3456, 2, 187.35),
    (0.123456789, 0, 0.12346),
    (0.00123456, 3, 0.001),  # at most 6 - szDecimals decimals
    (2.499, 0, 2.499),
    (99_999.96, 5, 100_000.0),
])
def test_prices_have_5_significant_figures_and_at_most_6_minus_sz_decimals_decimals(px, szd, expected):
    assert round_price(px, szd) == expected


@pytest.mark.parametrize("size, szd, expected", [
    (0.123456, 5, 0.12345), (0.3, 1, 0.3), (1.99999, 2, 1.99), (0.000004, 5, 0.0), (12.0, 0, 12.0),
])
def test_sizes_round_down_to_sz_decimals(size, szd, expected):
    assert round_size(size, szd) == expected


def test_the_taker_pays_the_slippage_and_never_beyond_its_limit():
    assert taker_price(4000.0, "buy", 2, 4) == 4000.8  # 4000 x 1.0002
    assert taker_price(4000.0, "sell", 2, 4) == 3999.2
    assert taker_price(100_000.0, "buy", 2, 5) == 100_020.0
    assert taker_price(100_000.0, "sell", 2, 5) == 99_980.0
    assert taker_price(4000.0, "buy", 2, 4, limit=4000.5) == 4000.5


def test_fees_margins_and_the_liquidation_price():
    assert fee(400.08, 0.00045) == approx(0.180036)
    assert initial_margin(400.08, 10) == approx(40.008)
    assert maintenance_margin(400.0, 25) == approx(8.0)  # notional / (2 x 25)
    pos = Position("ETH", 0.1, 4000.8, 10, 40.008)
    # margin + (p - e) q = q p / (2 L)  ->  p = (e - margin/q) / (1 - 1/(2L)) = 3600.72 / 0.98
    liq = liquidation_price(pos, 25)
    assert liq == approx(3600.72 / 0.98)
    assert not is_liquidatable(pos, liq + 0.01, 25) and is_liquidatable(pos, liq - 0.01, 25)
    short = Position("ETH", -0.1, 4000.0, 10, 40.0)
    assert liquidation_price(short, 25) == approx(4400.0 / 1.02)
    assert funding_payment(pos, 4000.0, 0.0000125) == approx(0.005)  # a long pays when the rate is positive
    assert funding_payment(short, 4000.0, 0.0000125, hours=3) == approx(-0.015)


# ------------------------------------------------------------------------------------------------ fills


def test_fills_open_extend_reduce_and_flip_a_position_like_the_fill_book():
    a = account()
    apply_fill(a, "ETH", "buy", 4000.0, 0.1, 0.18, 10)
    apply_fill(a, "ETH", "buy", 4100.0, 0.1, 0.1845, 10)
    pos = a.positions["ETH"]
    assert (pos.size, pos.entry_px) == (approx(0.2), approx(4050.0))
    assert pos.margin == approx(40.0 + 41.0)
    eff = apply_fill(a, "ETH", "sell", 4200.0, 0.3, 0.567, 5)  # closes 0.2 (+30) and opens a 0.1 short at 5x
    assert (eff.closed, eff.opened, eff.realized) == (approx(0.2), approx(0.1), approx(30.0))
    short = a.positions["ETH"]
    assert (short.size, short.entry_px, short.margin, short.leverage) == (approx(-0.1), 4200.0, approx(84.0), 5)
    assert a.cash == approx(10_000 - 0.18 - 0.1845 + 30 - 0.567)
    assert available(a) == approx(a.cash - 84.0)


# ------------------------------------------------------------------------------------------------ orders


def test_a_market_buy_fills_at_the_slipped_mark_with_the_taker_fee():
    a, j = account(), m.Journal()
    order = m.place(a, req(size=0.12345, leverage=10), ETH, FEES, T, j)
    assert order.status == "filled" and order.size == 0.1234  # ETH has 4 size decimals
    (f,) = j.fills
    assert (f.price, f.size, f.crossed, f.leverage) == (4000.8, 0.1234, True, 10)
    assert f.fee_usd == approx(4000.8 * 0.1234 * 0.00045)
    assert a.cash == approx(10_000 - 4000.8 * 0.1234 * 0.00045)
    assert margin_used(a) == approx(4000.8 * 0.1234 / 10)
    assert (order.oid, f.tid) == (1, 2)  # ids come from the account's sequence


def test_orders_below_10_usd_are_rejected_unless_they_only_reduce():
    a, j = account(), m.Journal()
    assert m.place(a, req("BTC", size=0.0001), BTC, FEES, T, j).status == "filled"  # exactly $10 at the mark
    small = m.place(a, req("BTC", size=0.00009), BTC, FEES, T, j)
    assert small.status == "rejected" and "minimum value of $10" in small.reason
    assert m.place(a, req("BTC", side="sell", size=0.00005, reduce_only=True), BTC, FEES, T, j).status == "filled"


def test_reduce_only_never_increases_and_is_capped_at_the_position():
    a, j = account(), m.Journal()
    assert m.place(a, req(side="sell", reduce_only=True), ETH, FEES, T, j).reason == "Reduce only order would increase position."
    m.place(a, req(size=0.1), ETH, FEES, T, j)
    assert m.place(a, req(size=0.1, reduce_only=True), ETH, FEES, T, j).status == "rejected"
    close = m.place(a, req(side="sell", size=5.0, reduce_only=True), ETH, FEES, T, j)
    assert (close.status, close.filled_size, a.positions) == ("filled", 0.1, {})


def test_limit_orders_rest_fill_as_maker_and_post_only_never_crosses():
    a, j = account(), m.Journal()
    ioc = m.place(a, req(kind="limit", price=3900.0, tif="Ioc"), ETH, FEES, T, j)
    assert ioc.status == "canceled"
    alo = m.place(a, req(kind="limit", price=4001.0, tif="Alo"), ETH, FEES, T, j)
    assert alo.status == "rejected" and alo.reason.startswith("Post only order would have immediately matched")
    crossing = m.place(a, req(kind="limit", price=4000.5, tif="Gtc", size=0.01), ETH, FEES, T, j)
    assert (crossing.status, crossing.avg_px) == ("filled", 4000.5)  # taker, capped at its limit
    rest = m.place(a, req(kind="limit", price=3900.0, tif="Gtc", size=0.1, leverage=5), ETH, FEES, T, j)
    assert rest.status == "open" and rest.reserved == approx(3900 * 0.1 / 5)
    cash = a.cash
    assert available(a) == approx(cash - margin_used(a) - 78.0)
    m.on_mark(a, m.Market("ETH", 3950.0, 4, 25), FEES, T + 1, j := m.Journal())
    assert not j.fills  # not there yet
    m.on_mark(a, m.Market("ETH", 3899.0, 4, 25), FEES, T + 2, j := m.Journal())
    (f,) = j.fills
    assert (f.price, f.size, f.crossed) == (3900.0, 0.1, False)
    assert f.fee_usd == approx(390.0 * 0.00015)  # maker
    assert a.cash == approx(cash - 390.0 * 0.00015) and not a.orders


def test_a_resting_order_needs_its_margin():
    a, j = account(cash=100.0), m.Journal()
    big = m.place(a, req(kind="limit", price=3000.0, tif="Gtc", size=1.0, leverage=10), ETH, FEES, T, j)
    assert big.status == "rejected" and big.reason.startswith("Insufficient margin")
    market = m.place(a, req(size=1.0, leverage=10), ETH, FEES, T, j)
    assert market.status == "rejected" and a.positions == {} and a.cash == 100.0


def test_take_profit_fires_as_taker_and_cancels_the_stop_loss():
    a, j = account(), m.Journal()
    m.place(a, req(size=0.1, leverage=10), ETH, FEES, T, j)
    tp = m.place(a, req(side="sell", kind="take_profit", trigger_px=4400.0, reduce_only=True), ETH, FEES, T, j)
    sl = m.place(a, req(side="sell", kind="stop", trigger_px=3800.0, reduce_only=True), ETH, FEES, T, j)
    assert tp.status == sl.status == "open"
    m.on_mark(a, m.Market("ETH", 4399.0, 4, 25), FEES, T + 1, j := m.Journal())
    assert not j.fills
    cash = a.cash
    m.on_mark(a, m.Market("ETH", 4400.0, 4, 25), FEES, T + 2, j := m.Journal())
    (f,) = j.fills
    assert (f.oid, f.side, f.price, f.size) == (tp.oid, "sell", 4399.1, 0.1)  # 4400 x 0.9998 = 4399.12 -> 4399.1
    assert a.cash == approx(cash + (4399.1 - 4000.8) * 0.1 - 439.91 * 0.00045)
    assert j.orders[sl.oid].status == "canceled" and a.positions == {} and a.orders == {}


def test_a_stop_loss_on_a_short_fires_when_the_mark_rises():
    a, j = account(), m.Journal()
    m.place(a, req(side="sell", size=0.1, leverage=10), ETH, FEES, T, j)
    sl = m.place(a, req(side="buy", kind="stop", trigger_px=4100.0, reduce_only=True), ETH, FEES, T, j)
    m.on_mark(a, m.Market("ETH", 4099.0, 4, 25), FEES, T + 1, j := m.Journal())
    assert not j.fills
    m.on_mark(a, m.Market("ETH", 4101.0, 4, 25), FEES, T + 2, j := m.Journal())
    (f,) = j.fills
    assert (f.oid, f.side, f.price) == (sl.oid, "buy", 4101.8)  # 4101 x 1.0002 = 4101.8202 -> 4101.8


def test_a_position_is_liquidated_when_margin_plus_pnl_falls_below_maintenance():
    a, j = account(), m.Journal()
    m.place(a, req(size=1.0, leverage=25), ETH, Fees(0.00045, 0.00015, 0), T, j)  # 4000, margin 160
    pos = a.positions["ETH"]
    assert liquidation_price(pos, 25) == approx(3840 / 0.98)  # 3918.367...
    cash = a.cash
    m.on_mark(a, m.Market("ETH", 3919.0, 4, 25), FEES, T + 1, j := m.Journal())
    assert not j.fills
    m.on_mark(a, m.Market("ETH", 3918.0, 4, 25), FEES, T + 2, j := m.Journal())
    (f,) = j.fills
    assert (f.side, f.price, f.size, f.crossed) == ("sell", 3918.0, 1.0, True)
    assert f.liquidation == {"liquidatedUser": "t1", "markPx": 3918.0, "method": "market"}
    assert a.cash == approx(cash - 82.0 - 3918.0 * 0.00045) and a.positions == {}


def test_funding_is_settled_per_hour_longs_paying_shorts_when_positive():
    a, j = account(), m.Journal()
    m.place(a, req(size=0.1, leverage=10), ETH, FEES, T + 10, j)
    cash = a.cash
    m.settle_funding(a, {"ETH": ETH}, T + 3_599_999, j := m.Journal())
    assert a.cash == cash and not j.funding  # the hour has not passed
    m.settle_funding(a, {"ETH": ETH}, T + 2 * 3_600_000 + 5, j := m.Journal())  # two boundaries
    assert j.funding == [("ETH", approx(0.1 * 4000 * 0.0000125 * 2))]
    assert a.cash == approx(cash - 0.01) and a.funding_ms == T + 2 * 3_600_000
    m.settle_funding(a, {"ETH": ETH}, T + 2 * 3_600_000 + 10, j := m.Journal())
    assert not j.funding  # settled once


def test_equity_marks_positions_to_the_mark():
    a, j = account(), m.Journal()
    m.place(a, req(size=0.1, leverage=10), ETH, FEES, T, j)
    assert equity(a, {"ETH": 4100.0}) == approx(a.cash + (4100.0 - 4000.8) * 0.1)


def test_leverage_above_the_asset_maximum_is_refused():
    a, j = account(), m.Journal()
    order = m.place(a, req(size=0.1, leverage=30), ETH, FEES, T, j)
    assert order.status == "rejected" and "above ETH's maximum of 25" in order.reason
