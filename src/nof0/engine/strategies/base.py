"""What the built-in strategies share: reading their parameters, sizing an entry inside the trader's
limits (stop at a multiple of ATR, target at the reward/risk the guards ask for), and writing the
reply exactly as a model would: reasoning text, then the decision JSON."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from typing import Any

from nof0.config import parse_duration
from nof0.engine.traders.context import DecisionContext, PositionView, SymbolView

__all__ = ["Strategy", "StrategyError"]


class StrategyError(ValueError):
    """A strategy name or parameter is wrong (names the parameter and the value)."""


class Strategy(ABC):
    name = "base"
    # parameter -> default; a trader's strategy_params may override any of them
    defaults: dict[str, Any] = {"leverage": 3.0, "stop_atr": 2.0, "size_pct": 90.0, "max_hold": "0s",
                                "series": "intraday"}

    def __init__(self, params: dict[str, Any]) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise StrategyError(f"strategy {self.name}: unknown parameter {unknown[0]!r}"
                                f" (known: {', '.join(sorted(self.defaults))})")
        self.params = {**self.defaults, **params}
        try:
            self.max_hold_ms = 0 if str(self.params["max_hold"]) in ("0", "0s") else int(
                parse_duration(self.params["max_hold"]) * 1000)
            for key, value in self.params.items():
                if key not in ("max_hold", "series") and not (isinstance(value, (int, float)) and value > 0):
                    raise ValueError(f"{key} must be a number > 0, got {value!r}")
        except ValueError as exc:
            raise StrategyError(f"strategy {self.name}: {exc}") from None
        if self.params["series"] not in ("intraday", "longterm"):
            raise StrategyError(f"strategy {self.name}: series must be intraday or longterm")

    # ------------------------------------------------------------------ to override
    @abstractmethod
    def entry_signal(self, view: SymbolView) -> tuple[str | None, float, str]:
        """(``buy_to_enter`` | ``sell_to_enter`` | None, strength 0..1, why)."""

    @abstractmethod
    def exit_signal(self, view: SymbolView, position: PositionView) -> tuple[bool, str]:
        """(leave the position, why)."""

    # ------------------------------------------------------------------ the reply
    def decide(self, ctx: DecisionContext) -> str:
        notes: list[str] = []
        decisions: dict[str, dict[str, Any]] = {}
        open_count = len(ctx.positions)
        for symbol, view in sorted(ctx.symbols.items()):
            position = ctx.positions.get(symbol)
            if position is not None:
                held_ms = ctx.now_ms - position.entry_ms if position.entry_ms else 0
                leave, why = self.exit_signal(view, position)
                if self.max_hold_ms and held_ms >= self.max_hold_ms:
                    leave, why = True, f"held {held_ms // 1000}s, the limit is {self.max_hold_ms // 1000}s"
                signal = "close_position" if leave else "hold"
                decisions[symbol] = {"signal": signal, "quantity": position.signed_quantity,
                                     "leverage": position.leverage, "confidence": 0.9 if leave else 0.7,
                                     "justification": why, **_plan(position.exit_plan)}
                notes.append(f"{symbol}: {position.side} {position.quantity:g} @ {position.entry_price:g}; {why}"
                             f" -> {'close' if leave else 'hold'}")
                continue
            side, strength, why = self.entry_signal(view)
            entry = None
            if side and symbol in ctx.cooldowns:
                why += "; in cooldown"
            elif side and open_count >= ctx.limits.max_positions:
                why += "; no position slot left"
            elif side:
                entry = self._entry(ctx, view, side, strength, why)
                if entry is None:
                    why += "; too small to size"
            if entry is not None:
                decisions[symbol] = entry
                open_count += 1
                notes.append(f"{symbol}: {why} -> {'long' if side == 'buy_to_enter' else 'short'}"
                             f" {entry['quantity']:g} at {entry['leverage']:g}x")
            else:
                decisions[symbol] = {"signal": "hold", "justification": why}
                notes.append(f"{symbol}: {why} -> hold")
        summary = "; ".join(f"{s} {d['signal']}" for s, d in decisions.items() if d["signal"] != "hold")
        reply = {"cot_trace_summary": f"{self.name}: " + (summary or "no trade"), "decisions": decisions}
        return "\n".join(notes) + "\n\n" + json.dumps(reply)

    def _entry(self, ctx: DecisionContext, view: SymbolView, side: str, strength: float, why: str
               ) -> dict[str, Any] | None:
        series = getattr(view, self.params["series"])
        atr = series.atr14 or series.atr3
        price = view.price
        if not atr or atr <= 0 or price <= 0:
            return None
        limits = ctx.limits
        leverage = max(1.0, min(float(self.params["leverage"]), limits.leverage_caps.get(view.symbol, 1.0)))
        notional = min(limits.max_position_size_usd * self.params["size_pct"] / 100,
                       ctx.account.available_usd * leverage * 0.5)
        quantity = _floor(notional / price, view.sz_decimals)
        if quantity <= 0 or quantity * price < 10:
            return None
        distance = float(self.params["stop_atr"]) * atr
        reward = distance * max(limits.min_risk_reward_ratio, 1.0) * 1.25
        if side == "buy_to_enter":
            stop, target = price - distance, price + reward
        else:
            stop, target = price + distance, price - reward
        if stop <= 0 or target <= 0:
            return None
        confidence = round(min(0.95, max(limits.min_confidence, 0.6 + 0.35 * strength)), 3)
        return {"signal": side, "quantity": quantity, "leverage": leverage, "profit_target": _sig(target),
                "stop_loss": _sig(stop), "confidence": confidence, "risk_usd": round(quantity * distance, 2),
                "invalidation_condition": f"{self.name} signal reverses", "justification": why}


def _plan(plan: dict) -> dict[str, Any]:
    return {k: plan[k] for k in ("profit_target", "stop_loss", "invalidation_condition") if plan.get(k) is not None}


def _floor(value: float, decimals: int | None) -> float:
    d = 4 if decimals is None else decimals
    return math.floor(value * 10 ** d) / 10 ** d


def _sig(value: float) -> float:
    return float(f"{value:.5g}")  # Hyperliquid prices: 5 significant figures
