"""Order decisions of the paper-trading engine, pure (no I/O): placing an order, reacting to a new mark
(resting limits, triggers, liquidation), cancelling, settling funding. Each function mutates the
:class:`~nof0.engine.exchange.sim.rules.Account` it is given (the engine passes a copy) and records what
it did in a :class:`Journal`, which the engine turns into ingest events.

Rejection messages follow Hyperliquid's where it has one, so a trader sees the same words on both venues.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nof0.engine.exchange.sim.rules import (
    HOUR_MS, MIN_ORDER_USD, Account, Execution, Fees, Order, apply_fill, available, crosses, default_leverage, fee,
    funding_payment, initial_margin, is_liquidatable, preview_fill, round_price, round_size, taker_price,
    trigger_fires,
)

__all__ = ["Market", "Journal", "Request", "place", "on_mark", "cancel", "settle_funding", "set_leverage",
           "LeverageError"]


@dataclass(frozen=True, slots=True)
class Market:
    """What the rules need of one symbol: its mark and Hyperliquid metadata (and funding rate)."""

    symbol: str
    mark: float | None
    sz_decimals: int
    max_leverage: float
    funding: float | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """An order as the rules see it (``OrderRequest`` flattened)."""

    symbol: str
    side: str
    size: float
    kind: str  # market | limit | take_profit | stop
    tif: str = "Ioc"
    price: float | None = None
    trigger_px: float | None = None
    trigger_market: bool = True
    reduce_only: bool = False
    leverage: float | None = None
    cloid: str | None = None
    confidence: float | None = None
    exit_plan: dict[str, Any] | None = None


@dataclass
class Journal:
    """What one operation changed: the final state of every order it touched, its fills, funding."""

    orders: dict[int, Order] = field(default_factory=dict)
    fills: list[Execution] = field(default_factory=list)
    funding: list[tuple[str, float]] = field(default_factory=list)  # (symbol, amount paid)
    changed: bool = False  # the account changed (cash, positions, settings, sequence)

    def touch(self, order: Order) -> None:
        self.orders[order.oid] = order
        self.changed = True


class LeverageError(ValueError):
    pass


def set_leverage(acct: Account, market: Market, leverage: float) -> None:
    if not (leverage >= 1):
        raise LeverageError(f"leverage must be at least 1, got {leverage:g}")
    if leverage > market.max_leverage:
        raise LeverageError(f"leverage {leverage:g} is above {market.symbol}'s maximum of {market.max_leverage:g}")
    acct.leverage[market.symbol] = float(leverage)


def _leverage(acct: Account, market: Market) -> float:
    return acct.leverage.get(market.symbol, default_leverage(market.max_leverage))


# ------------------------------------------------------------------------------------------------ placing


def place(acct: Account, req: Request, market: Market, fees: Fees, ts_ms: int, journal: Journal) -> Order:
    """Place one order; returns its state (filled, open, canceled or rejected), already in ``journal``."""
    order = Order(oid=acct.next_id(), symbol=req.symbol, side=req.side, size=req.size, kind=req.kind,  # type: ignore[arg-type]
                  ts_ms=ts_ms, tif=req.tif, reduce_only=req.reduce_only, cloid=req.cloid,
                  confidence=req.confidence, exit_plan=req.exit_plan, leverage=_leverage(acct, market))
    journal.touch(order)

    def reject(reason: str) -> Order:
        order.status, order.reason = "rejected", reason
        return order

    if req.leverage is not None:
        try:
            set_leverage(acct, market, req.leverage)
        except LeverageError as exc:
            return reject(str(exc))
        order.leverage = req.leverage
    order.size = round_size(req.size, market.sz_decimals)
    if order.size <= 0:
        order.size = req.size  # the row keeps the size asked for; the reason says why
        return reject(f"Order has zero size: {req.size!r} rounds to 0 at {market.sz_decimals} size decimals")
    if req.kind in ("limit",) or (req.kind in ("take_profit", "stop") and not req.trigger_market):
        if req.price is None or not req.price > 0:
            return reject("Order has invalid price: a limit order needs a positive price")
        order.price = round_price(req.price, market.sz_decimals)
    if req.kind in ("take_profit", "stop"):
        if req.trigger_px is None or not req.trigger_px > 0:
            return reject("Order has invalid trigger price")
        order.trigger_px = round_price(req.trigger_px, market.sz_decimals)
    if market.mark is None:
        return reject(f"no mark price for {req.symbol}: the market feed has not priced it yet")
    pos = acct.positions.get(req.symbol)
    if req.reduce_only:
        if pos is None or (pos.size > 0) == (req.side == "buy"):
            return reject("Reduce only order would increase position.")
        if req.kind in ("market", "limit"):
            order.size = min(order.size, abs(pos.size))
    ref_px = order.price if order.price is not None else (order.trigger_px if order.trigger_px else market.mark)
    if not req.reduce_only and order.size * ref_px < MIN_ORDER_USD:
        return reject(f"Order must have minimum value of $10 (this one: ${order.size * ref_px:.2f}).")

    if req.kind in ("take_profit", "stop"):
        order.tif = "Gtc"
        if trigger_fires(order, market.mark):
            _fire(acct, order, market, fees, ts_ms, journal, failure="rejected")
        else:
            acct.orders[order.oid] = order
        return order
    if req.kind == "market":
        _take(acct, order, market, fees, ts_ms, journal, limit=None, failure="rejected")
        return order
    assert order.price is not None
    if crosses(order.side, order.price, market.mark):
        if req.tif == "Alo":
            return reject(f"Post only order would have immediately matched, mark was {market.mark:g}.")
        _take(acct, order, market, fees, ts_ms, journal, limit=order.price, failure="rejected")
        return order
    if req.tif == "Ioc":
        order.status, order.reason = "canceled", "Order could not immediately match against any resting orders."
        return order
    if not req.reduce_only:
        order.reserved = initial_margin(order.size * order.price, order.leverage)
        if order.reserved > available(acct):
            order.reserved = 0.0
            return reject(f"Insufficient margin to place order: needs {initial_margin(order.size * order.price, order.leverage):.2f},"
                          f" available {max(0.0, available(acct)):.2f}.")
    acct.orders[order.oid] = order
    return order


def _take(acct: Account, order: Order, market: Market, fees: Fees, ts_ms: int, journal: Journal,
          limit: float | None, failure: str) -> None:
    """Fill the whole order now as taker at the slipped mark (never beyond ``limit``)."""
    assert market.mark is not None
    px = taker_price(market.mark, order.side, fees.slippage_bps, market.sz_decimals, limit)
    _execute(acct, order, px, fees.taker, True, ts_ms, journal, failure=failure)


def _execute(acct: Account, order: Order, px: float, rate: float, crossed: bool, ts_ms: int, journal: Journal,
             *, failure: str, liquidation: dict[str, Any] | None = None) -> None:
    """Fill what is left of ``order`` at ``px``; without the margin for it the order ends ``failure``
    (rejected when it is being placed, canceled when it rested)."""
    pos = acct.positions.get(order.symbol)
    size = order.size - order.filled_size
    if order.reduce_only:
        if pos is None or (pos.size > 0) == (order.side == "buy"):
            _close_order(acct, order, "canceled", "Reduce only order canceled: no position left to reduce.", journal)
            return
        size = min(size, abs(pos.size))
    fee_usd = fee(px * size, rate)
    eff = preview_fill(pos, order.side, px, size, order.leverage)
    if eff.opened and liquidation is None:
        # the opening part must be covered by what is free once the reducing part has settled
        free = available(acct) + order.reserved + eff.released + eff.realized - fee_usd
        if eff.added > free:
            _close_order(acct, order, failure,
                         f"Insufficient margin to place order: needs {eff.added:.2f}, available {max(0.0, free):.2f}.",
                         journal)
            return
    acct.orders.pop(order.oid, None)
    order.reserved = 0.0
    apply_fill(acct, order.symbol, order.side, px, size, fee_usd, order.leverage)
    order.record_fill(px, size, fee_usd)
    order.status = "filled"
    journal.fills.append(Execution(
        oid=order.oid, tid=acct.next_id(), symbol=order.symbol, side=order.side, price=px, size=size,
        fee_usd=fee_usd, crossed=crossed, leverage=order.leverage, ts_ms=ts_ms, confidence=order.confidence,
        exit_plan=order.exit_plan, liquidation=liquidation,
    ))
    journal.touch(order)
    if order.symbol not in acct.positions:
        _cancel_reduce_only(acct, order.symbol, journal)


def _close_order(acct: Account, order: Order, status: str, reason: str, journal: Journal) -> None:
    acct.orders.pop(order.oid, None)
    order.reserved = 0.0
    order.status, order.reason = status, reason  # type: ignore[assignment]
    journal.touch(order)


def _cancel_reduce_only(acct: Account, symbol: str, journal: Journal) -> None:
    """A flat position leaves nothing for its reduce-only orders (take-profit, stop-loss) to do."""
    for oid in sorted(acct.orders):
        o = acct.orders[oid]
        if o.symbol == symbol and o.reduce_only:
            _close_order(acct, o, "canceled", "Reduce only order canceled: position closed.", journal)


def _fire(acct: Account, order: Order, market: Market, fees: Fees, ts_ms: int, journal: Journal,
          failure: str) -> None:
    """A trigger whose price the mark crossed: a market trigger takes at once; a limit one becomes a
    resting limit at its price (and takes at once when that crosses)."""
    acct.orders.pop(order.oid, None)
    assert market.mark is not None
    if order.price is None:
        _take(acct, order, market, fees, ts_ms, journal, limit=None, failure=failure)
    elif crosses(order.side, order.price, market.mark):
        _take(acct, order, market, fees, ts_ms, journal, limit=order.price, failure=failure)
    else:
        order.kind = "limit"  # triggered: from now on a resting limit (trigger_px stays for the record)
        acct.orders[order.oid] = order
        journal.touch(order)


# ------------------------------------------------------------------------------------------- a new mark


def on_mark(acct: Account, market: Market, fees: Fees, ts_ms: int, journal: Journal) -> None:
    """A new mark of ``market.symbol``: resting limits it crossed fill as maker, triggers it crossed fire,
    then the position is liquidated if its margin no longer covers the maintenance margin."""
    mark = market.mark
    if mark is None:
        return
    for oid in sorted(acct.orders):
        order = acct.orders.get(oid)
        if order is None or order.symbol != market.symbol:
            continue  # filled or cancelled by an earlier order of this pass
        if order.kind == "limit":
            assert order.price is not None
            if crosses(order.side, order.price, mark):  # a resting buy fills once the mark falls to its price
                _execute(acct, order, order.price, fees.maker, False, ts_ms, journal, failure="canceled")
        elif trigger_fires(order, mark):
            _fire(acct, order, market, fees, ts_ms, journal, failure="canceled")
    pos = acct.positions.get(market.symbol)
    if pos is not None and is_liquidatable(pos, mark, market.max_leverage):
        liq = Order(oid=acct.next_id(), symbol=market.symbol, side="sell" if pos.size > 0 else "buy",
                    size=abs(pos.size), kind="market", ts_ms=ts_ms, reduce_only=True, leverage=pos.leverage,
                    reason="liquidation")
        journal.touch(liq)
        px = round_price(mark, market.sz_decimals)
        _execute(acct, liq, px, fees.taker, True, ts_ms, journal, failure="canceled",
                 liquidation={"liquidatedUser": acct.trader_id, "markPx": mark, "method": "market"})


# ---------------------------------------------------------------------------------------------- cancel


def cancel(acct: Account, oid: int, journal: Journal, reason: str = "canceled by the trader") -> bool:
    order = acct.orders.get(oid)
    if order is None:
        return False
    _close_order(acct, order, "canceled", reason, journal)
    return True


# --------------------------------------------------------------------------------------------- funding


def settle_funding(acct: Account, markets: dict[str, Market], ts_ms: int, journal: Journal) -> None:
    """Settle every hour boundary passed since the last one settled: each open position pays (or earns)
    ``signed size x mark x hourly rate`` per hour, at the present mark and rate."""
    hour = ts_ms // HOUR_MS * HOUR_MS
    if acct.funding_ms == 0:
        acct.funding_ms = hour  # a new account owes nothing for the hours before it existed
        journal.changed = True
        return
    hours = (hour - acct.funding_ms // HOUR_MS * HOUR_MS) // HOUR_MS
    if hours <= 0:
        return
    for symbol in sorted(acct.positions):
        market = markets.get(symbol)
        if market is None or market.mark is None or not market.funding:
            continue
        paid = funding_payment(acct.positions[symbol], market.mark, market.funding, int(hours))
        acct.cash -= paid
        journal.funding.append((symbol, paid))
    acct.funding_ms = hour
    journal.changed = True
