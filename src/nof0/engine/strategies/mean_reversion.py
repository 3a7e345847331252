"""``strategy:mean_reversion``: fade the extremes. Long when RSI7 is oversold, short when it is
overbought; leave once RSI7 is back at its midline."""

from __future__ import annotations

from nof0.engine.strategies.base import Strategy
from nof0.engine.traders.context import PositionView, SymbolView

__all__ = ["MeanReversion"]


class MeanReversion(Strategy):
    name = "mean_reversion"
    defaults = {**Strategy.defaults, "oversold": 30.0, "overbought": 70.0, "exit_rsi": 50.0}

    def entry_signal(self, view: SymbolView) -> tuple[str | None, float, str]:
        s = getattr(view, self.params["series"])
        if s.rsi7 is None or not s.atr14:
            return None, 0.0, "not enough history for RSI7/ATR14"
        low, high = float(self.params["oversold"]), float(self.params["overbought"])
        if s.rsi7 <= low:
            return "buy_to_enter", min(1.0, (low - s.rsi7) / low + 0.5), f"RSI7 {s.rsi7:.1f} <= {low:g}: oversold"
        if s.rsi7 >= high:
            return "sell_to_enter", min(1.0, (s.rsi7 - high) / (100 - high) + 0.5), \
                f"RSI7 {s.rsi7:.1f} >= {high:g}: overbought"
        return None, 0.0, f"RSI7 {s.rsi7:.1f} inside {low:g}-{high:g}"

    def exit_signal(self, view: SymbolView, position: PositionView) -> tuple[bool, str]:
        s = getattr(view, self.params["series"])
        if s.rsi7 is None:
            return False, "no RSI; keep the exit plan"
        mid = float(self.params["exit_rsi"])
        if position.side == "long" and s.rsi7 >= mid:
            return True, f"RSI7 {s.rsi7:.1f} back above {mid:g}"
        if position.side == "short" and s.rsi7 <= mid:
            return True, f"RSI7 {s.rsi7:.1f} back below {mid:g}"
        return False, f"RSI7 {s.rsi7:.1f}: not reverted yet"
