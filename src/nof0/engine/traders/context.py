"""What a trader sees in one cycle (engine.md "Prompts"): account, positions, candidate symbols with
price, 1h/4h change, EMA20/50, MACD 12/26/9, RSI 7/14, ATR 3/14, funding, open interest, and its risk
limits. Plain data: built by ``context_builder`` from the store and the market state, rendered into
prompts by ``prompts``, read by the built-in strategies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from nof0.engine.market import indicators as ind
from nof0.engine.market.provider import Candle

__all__ = ["Indicators", "SymbolView", "PositionView", "AccountView", "Limits", "DecisionContext",
           "indicators_from_candles", "SERIES_LEN"]

SERIES_LEN = 10  # values of each series quoted in a prompt (oldest first)


@dataclass(frozen=True, slots=True)
class Indicators:
    """Indicators of one candle series; ``None`` where the history is too short."""

    interval: str
    close: float | None = None
    ema20: float | None = None
    ema50: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None
    prev_macd_hist: float | None = None
    rsi7: float | None = None
    rsi14: float | None = None
    prev_rsi7: float | None = None
    atr3: float | None = None
    atr14: float | None = None
    volume: float | None = None
    closes: tuple[float, ...] = ()  # the last SERIES_LEN closes
    ema20_series: tuple[float | None, ...] = ()
    macd_series: tuple[float | None, ...] = ()
    rsi7_series: tuple[float | None, ...] = ()
    rsi14_series: tuple[float | None, ...] = ()


def _value(v) -> float | None:
    return None if v is None or v != v else float(v)  # None or NaN: not defined yet


def _last(xs, back: int = 0) -> float | None:
    return _value(xs[-1 - back]) if len(xs) > back else None


def _tail(xs) -> tuple[float | None, ...]:
    return tuple(_value(v) for v in list(xs)[-SERIES_LEN:])


def indicators_from_candles(interval: str, candles: Sequence[Candle]) -> Indicators:
    if not candles:
        return Indicators(interval)
    closes = [c.c for c in candles]
    highs = [c.h for c in candles]
    lows = [c.l for c in candles]
    e20, e50 = ind.ema(closes, 20), ind.ema(closes, 50)
    m, s, h = ind.macd(closes, 12, 26, 9)
    r7, r14 = ind.rsi(closes, 7), ind.rsi(closes, 14)
    a3, a14 = ind.atr(highs, lows, closes, 3), ind.atr(highs, lows, closes, 14)
    return Indicators(
        interval=interval, close=closes[-1], ema20=_last(e20), ema50=_last(e50), macd=_last(m),
        macd_signal=_last(s), macd_hist=_last(h), prev_macd_hist=_last(h, 1), rsi7=_last(r7), rsi14=_last(r14),
        prev_rsi7=_last(r7, 1), atr3=_last(a3), atr14=_last(a14), volume=candles[-1].v,
        closes=tuple(closes[-SERIES_LEN:]), ema20_series=_tail(e20), macd_series=_tail(m),
        rsi7_series=_tail(r7), rsi14_series=_tail(r14),
    )


@dataclass(frozen=True, slots=True)
class SymbolView:
    symbol: str
    price: float
    intraday: Indicators
    longterm: Indicators
    change_1h_pct: float | None = None
    change_4h_pct: float | None = None
    funding: float | None = None  # hourly rate
    open_interest: float | None = None  # coins
    max_leverage: float | None = None  # the venue's cap for the asset
    sz_decimals: int | None = None

    @property
    def open_interest_usd(self) -> float | None:
        return None if self.open_interest is None else self.open_interest * self.price


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    side: str  # long | short
    quantity: float  # coins, > 0
    entry_price: float
    mark: float
    leverage: float
    unrealized_pnl: float
    margin_usd: float
    entry_ms: int | None = None
    confidence: float | None = None
    exit_plan: dict = field(default_factory=dict)

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "long" else -self.quantity

    @property
    def notional_usd(self) -> float:
        return self.quantity * self.mark


@dataclass(frozen=True, slots=True)
class AccountView:
    equity_usd: float
    available_usd: float
    margin_used_usd: float
    starting_capital_usd: float

    @property
    def return_pct(self) -> float:
        cap = self.starting_capital_usd
        return (self.equity_usd / cap - 1) * 100 if cap else 0.0


@dataclass(frozen=True, slots=True)
class Limits:
    """A trader's risk limits as they apply now: its risk_params with each asset's leverage cap
    folded in (recomputed when asset metadata changes)."""

    max_positions: int
    max_position_size_usd: float
    max_margin_usage_pct: float
    min_risk_reward_ratio: float
    min_confidence: float
    min_liquidity_usd: float
    stop_loss_enabled: bool
    take_profit_enabled: bool
    allowed_symbols: tuple[str, ...]
    leverage_caps: dict[str, float]  # symbol -> min(trader's major/alt cap, asset maxLeverage)


@dataclass(frozen=True, slots=True)
class DecisionContext:
    trader_id: str
    cycle_number: int
    now_ms: int
    started_ms: int  # the trader's inception (minutes since start in the prompt)
    account: AccountView
    positions: dict[str, PositionView]
    symbols: dict[str, SymbolView]
    limits: Limits
    cooldowns: dict[str, int]  # symbol -> until (ms), only those still running
    invocations: int  # cycles before this one

    @property
    def minutes_since_start(self) -> int:
        return max(0, (self.now_ms - self.started_ms) // 60_000)
