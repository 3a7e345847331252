"""The built-in strategies answer the decision contract from the context alone (no network), within
the trader's limits, and deterministically."""

from __future__ import annotations

import pytest

from nof0.engine.market.provider import Candle
from nof0.engine.strategies import StrategyError, strategy_for
from nof0.engine.traders.context import (
    AccountView, DecisionContext, Limits, PositionView, SymbolView, indicators_from_candles,
)
from nof0.engine.traders.contract import parse_reply

T0 = 1_761_400_000_000


def candles(closes: list[float], interval: str = "1m") -> list[Candle]:
    return [Candle(t=T0 + i * 60_000, T=T0 + (i + 1) * 60_000 - 1, symbol="BTC", interval=interval, o=c, h=c * 1.002,
                   l=c * 0.998, c=c, v=1.0) for i, c in enumerate(closes)]


def view(closes: list[float], symbol: str = "BTC") -> SymbolView:
    ind = indicators_from_candles("1m", candles(closes))
    return SymbolView(symbol=symbol, price=closes[-1], intraday=ind, longterm=ind, funding=0.00001,
                      open_interest=1e6, max_leverage=40, sz_decimals=5)


def limits(**kw) -> Limits:
    base = dict(max_positions=3, max_position_size_usd=500, max_margin_usage_pct=60, min_risk_reward_ratio=2.0,
                min_confidence=0.6, min_liquidity_usd=0, stop_loss_enabled=True, take_profit_enabled=True,
                allowed_symbols=("BTC", "ETH"), leverage_caps={"BTC": 20, "ETH": 20})
    return Limits(**{**base, **kw})


def ctx(views: dict[str, SymbolView], positions: dict[str, PositionView] | None = None, **kw) -> DecisionContext:
    return DecisionContext(trader_id="t1", cycle_number=1, now_ms=T0 + 3_600_000, started_ms=T0,
                           account=AccountView(10_000, 10_000, 0, 10_000), positions=positions or {},
                           symbols=views, limits=kw.pop("lim", limits()), cooldowns=kw.pop("cooldowns", {}),
                           invocations=0)


UP = [100 * 1.004 ** (i * i / 40) for i in range(80)]  # an accelerating rise: MACD histogram > 0
DOWN = [300 - x for x in UP]  # an accelerating fall
OVERSOLD = [100.0] * 60 + [100 - i * 1.5 for i in range(1, 15)]


def test_momentum_enters_with_the_trend_inside_the_limits():
    reply = parse_reply(strategy_for("strategy:momentum").decide(ctx({"BTC": view(UP), "ETH": view(DOWN, "ETH")})))
    btc, eth = reply.decisions["BTC"], reply.decisions["ETH"]
    assert btc.signal == "buy_to_enter" and eth.signal == "sell_to_enter"
    price = UP[-1]
    assert btc.quantity * price <= 500 and btc.leverage == 3
    assert btc.stop_loss < price < btc.profit_target
    assert (btc.profit_target - price) / (price - btc.stop_loss) >= 2.0
    assert 0.6 <= btc.confidence <= 0.95 and reply.cot_trace.startswith("BTC:")
    assert reply.summary.startswith("momentum:")


def test_momentum_closes_a_position_against_the_trend():
    pos = PositionView("BTC", "long", 0.01, 130, DOWN[-1], 3, -1.0, 50, entry_ms=T0)
    reply = parse_reply(strategy_for("strategy:momentum").decide(ctx({"BTC": view(DOWN)}, {"BTC": pos})))
    assert reply.decisions["BTC"].signal == "close_position" and reply.decisions["BTC"].quantity == 0.01


def test_mean_reversion_buys_oversold_and_respects_cooldowns_and_slots():
    s = strategy_for("strategy:mean_reversion")
    assert parse_reply(s.decide(ctx({"BTC": view(OVERSOLD)}))).decisions["BTC"].signal == "buy_to_enter"
    cooled = parse_reply(s.decide(ctx({"BTC": view(OVERSOLD)}, cooldowns={"BTC": T0 + 9_999_999})))
    assert cooled.decisions["BTC"].signal == "hold" and "cooldown" in cooled.decisions["BTC"].justification
    full = parse_reply(s.decide(ctx({"BTC": view(OVERSOLD)}, lim=limits(max_positions=1), positions={
        "ETH": PositionView("ETH", "long", 1, 100, 100, 2, 0, 50, entry_ms=T0)})))
    assert full.decisions["BTC"].signal == "hold"


def test_max_hold_closes_a_position():
    s = strategy_for("strategy:mean_reversion", {"max_hold": "30m"})
    pos = PositionView("BTC", "long", 0.01, 100, OVERSOLD[-1], 3, -1.0, 50, entry_ms=T0)
    assert parse_reply(s.decide(ctx({"BTC": view(OVERSOLD)}, {"BTC": pos}))).decisions["BTC"].signal == "close_position"


def test_short_history_holds():
    reply = parse_reply(strategy_for("strategy:momentum").decide(ctx({"BTC": view(UP[:10])})))
    assert reply.decisions["BTC"].signal == "hold"


def test_same_context_same_reply():
    c = ctx({"BTC": view(UP)})
    assert strategy_for("strategy:momentum").decide(c) == strategy_for("strategy:momentum").decide(c)


@pytest.mark.parametrize("model, params, message", [
    ("strategy:astrology", {}, "unknown strategy 'strategy:astrology'"),
    ("strategy:momentum", {"levrage": 2}, "unknown parameter 'levrage'"),
    ("strategy:momentum", {"leverage": -2}, "leverage must be a number > 0"),
    ("strategy:momentum", {"max_hold": "soon"}, "duration"),
])
def test_bad_strategy_configuration_is_named(model, params, message):
    with pytest.raises(StrategyError, match=message):
        strategy_for(model, params)
