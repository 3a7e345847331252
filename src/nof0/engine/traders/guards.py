"""The executor's guards (engine.md "Executor"): every entry a model asks for is checked against the
trader's limits before anything is sent; a rejection carries its reason into the journal.

Checked in this order (the first failure is the reason): allowed symbol, market data known, no
pyramiding into an open position, no re-entry during a cooldown, position slots, confidence >=
``min_confidence``, a quantity, leverage <= the trader's cap for majors/alts and <= the asset's
``maxLeverage``, stop loss and take profit on the right side of the entry with reward/risk >=
``min_risk_reward_ratio``, liquidity (open interest x mark >= ``min_liquidity_usd``), notional <=
``max_position_size_usd`` (and >= the venue's 10 USD minimum), margin use <= ``max_margin_usage_pct``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nof0.engine.traders.context import DecisionContext
from nof0.engine.traders.contract import ContractDecision

__all__ = ["MAJORS", "MIN_ORDER_USD", "EntryPlan", "check_entry", "leverage_caps"]

MAJORS = frozenset({"BTC", "ETH"})
MIN_ORDER_USD = 10.0


@dataclass(frozen=True, slots=True)
class EntryPlan:
    symbol: str
    side: str  # long | short
    quantity: float
    leverage: float
    price: float  # the mark the checks used
    profit_target: float | None
    stop_loss: float | None

    @property
    def margin_usd(self) -> float:
        return self.quantity * self.price / self.leverage


def leverage_caps(symbols, major_cap: float, alt_cap: float, asset_caps: dict[str, float | None]) -> dict[str, float]:
    """Per symbol: the trader's cap (majors or alts), lowered to the asset's maxLeverage when known."""
    out = {}
    for s in symbols:
        cap = major_cap if s in MAJORS else alt_cap
        asset = asset_caps.get(s)
        out[s] = min(cap, asset) if asset else cap
    return out


def check_entry(symbol: str, d: ContractDecision, ctx: DecisionContext, *, closing: set[str],
                planned: list[EntryPlan], trader_caps: tuple[float, float]) -> tuple[EntryPlan | None, str | None]:
    """The entry to place, or the reason it is refused. ``closing``: symbols this cycle closes first;
    ``planned``: entries already accepted this cycle (they count against slots and margin)."""
    lim = ctx.limits
    side = "long" if d.signal == "buy_to_enter" else "short"
    if symbol not in lim.allowed_symbols:
        return None, f"{symbol} is not an allowed symbol ({', '.join(lim.allowed_symbols)})"
    view = ctx.symbols.get(symbol)
    if view is None or not view.price:
        return None, f"no market data for {symbol}"
    if symbol in ctx.positions and symbol not in closing:
        held = ctx.positions[symbol]
        return None, f"already holds a {held.side} {symbol} position (no pyramiding)"
    if symbol in ctx.cooldowns:
        return None, f"{symbol} is in cooldown until {ctx.cooldowns[symbol]} ms"
    held_after = len([s for s in ctx.positions if s not in closing]) + len(planned)
    if held_after >= lim.max_positions:
        return None, f"max_positions {lim.max_positions} reached"
    if d.confidence is None or d.confidence < lim.min_confidence:
        return None, f"confidence {d.confidence} below min_confidence {lim.min_confidence:g}"
    quantity = abs(d.quantity or 0.0)
    if quantity <= 0:
        return None, "an entry needs a quantity > 0"
    leverage = d.leverage or 1.0
    major_cap, alt_cap = trader_caps
    own_cap = major_cap if symbol in MAJORS else alt_cap
    if leverage > own_cap:
        kind = "majors" if symbol in MAJORS else "altcoins"
        return None, f"leverage {leverage:g} above the trader's cap {own_cap:g} for {kind}"
    if view.max_leverage and leverage > view.max_leverage:
        return None, f"leverage {leverage:g} above {symbol}'s maxLeverage {view.max_leverage:g}"
    price = view.price
    tp, sl = d.profit_target, d.stop_loss
    if lim.stop_loss_enabled and sl is None:
        return None, "an entry needs a stop_loss"
    if lim.take_profit_enabled and tp is None:
        return None, "an entry needs a profit_target"
    if tp is not None and sl is not None:
        if side == "long" and not (sl < price < tp):
            return None, f"a long needs stop_loss < entry {price:g} < profit_target (got {sl:g} / {tp:g})"
        if side == "short" and not (tp < price < sl):
            return None, f"a short needs profit_target < entry {price:g} < stop_loss (got {tp:g} / {sl:g})"
        rr = abs(tp - price) / abs(price - sl)
        if rr < lim.min_risk_reward_ratio:
            return None, f"reward/risk {rr:.2f} below min_risk_reward_ratio {lim.min_risk_reward_ratio:g}"
    if lim.min_liquidity_usd:
        oi_usd = view.open_interest_usd
        if oi_usd is None:
            return None, f"open interest of {symbol} unknown (min_liquidity_usd {lim.min_liquidity_usd:,.0f})"
        if oi_usd < lim.min_liquidity_usd:
            return None, f"liquidity {oi_usd:,.0f} USD below min_liquidity_usd {lim.min_liquidity_usd:,.0f}"
    notional = quantity * price
    if notional > lim.max_position_size_usd:
        return None, f"position size {notional:,.2f} USD above max_position_size_usd {lim.max_position_size_usd:,.0f}"
    if notional < MIN_ORDER_USD:
        return None, f"position size {notional:,.2f} USD below the {MIN_ORDER_USD:g} USD minimum order"
    plan = EntryPlan(symbol, side, quantity, leverage, price, tp, sl)
    equity = ctx.account.equity_usd
    released = sum(ctx.positions[s].margin_usd for s in closing if s in ctx.positions)
    margin = ctx.account.margin_used_usd - released + sum(p.margin_usd for p in planned) + plan.margin_usd
    usage = margin / equity * 100 if equity > 0 else float("inf")
    if usage > lim.max_margin_usage_pct:
        return None, f"margin use {usage:.1f}% above max_margin_usage_pct {lim.max_margin_usage_pct:g}"
    return plan, None
