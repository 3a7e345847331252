"""``strategy:momentum``: follow the trend. Long when EMA20 is above EMA50 and the MACD histogram is
positive, short in the mirror case; leave when either turns against the position."""

from __future__ import annotations

from nof0.engine.strategies.base import Strategy
from nof0.engine.traders.context import PositionView, SymbolView

__all__ = ["Momentum"]


class Momentum(Strategy):
    name = "momentum"

    def entry_signal(self, view: SymbolView) -> tuple[str | None, float, str]:
        s = getattr(view, self.params["series"])
        if s.ema20 is None or s.ema50 is None or s.macd_hist is None or not s.atr14:
            return None, 0.0, "not enough history for EMA20/EMA50/MACD"
        spread = (s.ema20 - s.ema50) / s.atr14
        strength = min(1.0, abs(spread) / 2)
        if s.ema20 > s.ema50 and s.macd_hist > 0:
            return "buy_to_enter", strength, f"EMA20 {s.ema20:.6g} > EMA50 {s.ema50:.6g}, MACD hist {s.macd_hist:+.4g}"
        if s.ema20 < s.ema50 and s.macd_hist < 0:
            return "sell_to_enter", strength, f"EMA20 {s.ema20:.6g} < EMA50 {s.ema50:.6g}, MACD hist {s.macd_hist:+.4g}"
        return None, 0.0, f"EMA20 {s.ema20:.6g} vs EMA50 {s.ema50:.6g}, MACD hist {s.macd_hist:+.4g}: no trend"

    def exit_signal(self, view: SymbolView, position: PositionView) -> tuple[bool, str]:
        s = getattr(view, self.params["series"])
        if s.ema20 is None or s.ema50 is None or s.macd_hist is None:
            return False, "no indicators; keep the exit plan"
        if position.side == "long" and (s.ema20 < s.ema50 or s.macd_hist < 0):
            return True, f"trend turned: EMA20 {s.ema20:.6g}, EMA50 {s.ema50:.6g}, MACD hist {s.macd_hist:+.4g}"
        if position.side == "short" and (s.ema20 > s.ema50 or s.macd_hist > 0):
            return True, f"trend turned: EMA20 {s.ema20:.6g}, EMA50 {s.ema50:.6g}, MACD hist {s.macd_hist:+.4g}"
        return False, "trend intact"
