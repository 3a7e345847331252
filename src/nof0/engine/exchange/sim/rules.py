"""The paper-trading rules of engine.md "Exchange providers / sim", pure: no I/O, no clock, no randomness.

* Prices: 5 significant figures and at most ``6 - szDecimals`` decimals (Hyperliquid's perp rule; an
  integer price is always valid, so prices of 100,000 and more round to whole dollars). Sizes: down to
  ``szDecimals`` decimals (never more than asked).
* A taker (market order, crossing limit, fired market trigger) fills at the mark moved by
  ``slippage_bps`` against it, never beyond its limit; a resting limit fills at its own price as maker
  once the mark crosses it. Fees: notional x taker or maker rate.
* Isolated margin per position: each increase adds ``notional / leverage``; a reduction releases the
  margin pro rata. Maintenance margin = ``notional at mark / (2 x maxLeverage)``; a position whose
  margin plus unrealized PnL falls below it is liquidated (closed at the mark as taker).
* Funding: hourly, ``signed size x mark x hourly rate`` per hour boundary crossed; longs pay shorts when
  the rate is positive. It settles against the cash balance.
* Account: ``cash`` = starting capital + realized PnL - fees - funding; ``equity`` = cash + unrealized
  PnL; ``available`` = cash - position margins - margin reserved by resting orders.

The engine (``sim.exchange``) applies these to a copy of an account and keeps the copy only once the
events it produced are committed; rebuilding an account from stored fills runs the same
:func:`apply_fill`, so a restarted engine holds the same bits as the one that stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

__all__ = [
    "HOUR_MS", "MIN_ORDER_USD", "PERP_MAX_DECIMALS", "DUST", "Fees", "Position", "Order", "Account", "Execution",
    "round_price", "round_size", "taker_price", "fee", "initial_margin", "maintenance_margin", "unrealized_pnl",
    "liquidation_price", "is_liquidatable", "funding_payment", "apply_fill", "preview_fill", "crosses",
    "trigger_fires", "default_leverage", "available", "equity", "margin_used", "OrderKind",
]

HOUR_MS = 3_600_000
MIN_ORDER_USD = 10.0
PERP_MAX_DECIMALS = 6
DUST = 1e-9  # relative: sizes this close are equal (the fill book's rule, so both agree on "flat")
DEFAULT_LEVERAGE = 20.0  # Hyperliquid's default for an asset that allows it

Side = Literal["buy", "sell"]
OrderKind = Literal["market", "limit", "take_profit", "stop"]


@dataclass(frozen=True, slots=True)
class Fees:
    taker: float
    maker: float
    slippage_bps: float = 0.0


@dataclass(slots=True)
class Position:
    symbol: str
    size: float  # signed coins: > 0 long, < 0 short
    entry_px: float
    leverage: float
    margin: float  # isolated margin held by the position

    @property
    def side(self) -> Literal["long", "short"]:
        return "long" if self.size > 0 else "short"


@dataclass(slots=True)
class Order:
    """One order as ``sim_orders`` keeps it; the open ones (resting limits, pending triggers) also live in
    :attr:`Account.orders`."""

    oid: int
    symbol: str
    side: Side
    size: float
    kind: OrderKind
    ts_ms: int
    tif: str = "Ioc"
    price: float | None = None  # limit price (a market trigger: None)
    trigger_px: float | None = None
    reduce_only: bool = False
    leverage: float = DEFAULT_LEVERAGE
    cloid: str | None = None
    status: Literal["open", "filled", "canceled", "rejected"] = "open"
    filled_size: float = 0.0
    avg_px: float | None = None
    fee_usd: float = 0.0
    reason: str | None = None  # why it was rejected or canceled
    reserved: float = 0.0  # margin a resting order holds back from ``available``
    confidence: float | None = None
    exit_plan: dict[str, Any] | None = None
    seq: int = 0  # the account's sequence when this state was written (orders states at one ms)

    def record_fill(self, px: float, size: float, fee_usd: float) -> None:
        filled = self.filled_size + size
        self.avg_px = px if self.avg_px is None else (self.avg_px * self.filled_size + px * size) / filled
        self.filled_size = filled
        self.fee_usd += fee_usd


@dataclass(frozen=True, slots=True)
class Execution:
    """A fill the engine persists as a ``fill`` event."""

    oid: int
    tid: int
    symbol: str
    side: Side
    price: float
    size: float
    fee_usd: float
    crossed: bool  # taker
    leverage: float
    ts_ms: int
    confidence: float | None = None
    exit_plan: dict[str, Any] | None = None
    liquidation: dict[str, Any] | None = None


@dataclass(slots=True)
class Account:
    trader_id: str
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)  # open orders by oid
    leverage: dict[str, float] = field(default_factory=dict)  # per symbol, set by update_leverage / orders
    seq: int = 0  # last id handed out (oids, tids) and version of the last state written
    ts_ms: int = 0  # time of the last state written; the engine never writes an older one
    funding_ms: int = 0  # the last hour boundary whose funding is settled

    def next_id(self) -> int:
        self.seq += 1
        return self.seq

    def copy(self) -> "Account":
        return Account(
            trader_id=self.trader_id, cash=self.cash,
            positions={k: replace(p) for k, p in self.positions.items()},
            orders={k: replace(o) for k, o in self.orders.items()},
            leverage=dict(self.leverage), seq=self.seq, ts_ms=self.ts_ms, funding_ms=self.funding_ms,
        )


# ----------------------------------------------------------------------------------------- rounding


def round_price(px: float, sz_decimals: int) -> float:
    """Hyperliquid's perp price rule: 5 significant figures, at most ``6 - szDecimals`` decimals; an
    integer price is always valid (so 111,317.4 -> 111,317 rather than 111,320)."""
    if not (px > 0 and math.isfinite(px)):
        raise ValueError(f"price must be a positive number, got {px!r}")
    if px >= 100_000:
        return float(round(px))
    return round(float(f"{px:.5g}"), max(0, PERP_MAX_DECIMALS - sz_decimals))


def round_size(size: float, sz_decimals: int) -> float:
    """Down to ``szDecimals`` decimals (from the shortest decimal text of the float, so 0.3 stays 0.3)."""
    if not (size > 0 and math.isfinite(size)):
        return 0.0
    return float(Decimal(repr(size)).quantize(Decimal(1).scaleb(-sz_decimals), rounding=ROUND_DOWN))


def taker_price(mark: float, side: Side, slippage_bps: float, sz_decimals: int, limit: float | None = None) -> float:
    """The mark moved by the slippage against the taker, rounded, never beyond its limit price."""
    move = slippage_bps / 10_000
    px = round_price(mark * (1 + move) if side == "buy" else mark * (1 - move), sz_decimals)
    if limit is not None:
        px = min(px, limit) if side == "buy" else max(px, limit)
    return px


# ----------------------------------------------------------------------------------------- money


def fee(notional: float, rate: float) -> float:
    return notional * rate


def initial_margin(notional: float, leverage: float) -> float:
    return notional / leverage


def maintenance_margin(notional: float, max_leverage: float) -> float:
    """Hyperliquid's first margin tier: half the initial margin at the asset's maximum leverage."""
    return notional / (2 * max_leverage)


def default_leverage(max_leverage: float) -> float:
    return min(DEFAULT_LEVERAGE, max_leverage)


def unrealized_pnl(pos: Position, mark: float) -> float:
    return (mark - pos.entry_px) * pos.size


def liquidation_price(pos: Position, max_leverage: float) -> float | None:
    """The mark at which margin + unrealized PnL equals the maintenance margin (None: never, e.g. a long
    whose margin covers the whole notional)."""
    q = abs(pos.size)
    k = 1 / (2 * max_leverage)
    if pos.size > 0:
        px = (pos.entry_px - pos.margin / q) / (1 - k)
    else:
        px = (pos.entry_px + pos.margin / q) / (1 + k)
    return px if px > 0 else None


def is_liquidatable(pos: Position, mark: float, max_leverage: float) -> bool:
    return pos.margin + unrealized_pnl(pos, mark) < maintenance_margin(abs(pos.size) * mark, max_leverage)


def funding_payment(pos: Position, mark: float, hourly_rate: float, hours: int = 1) -> float:
    """What the position pays for ``hours`` funding periods (negative: it receives)."""
    return pos.size * mark * hourly_rate * hours


def margin_used(acct: Account) -> float:
    return sum(acct.positions[s].margin for s in sorted(acct.positions))


def reserved(acct: Account) -> float:
    return sum(acct.orders[o].reserved for o in sorted(acct.orders))


def available(acct: Account) -> float:
    return acct.cash - margin_used(acct) - reserved(acct)


def equity(acct: Account, marks: dict[str, float]) -> float:
    upnl = 0.0
    for symbol in sorted(acct.positions):
        pos = acct.positions[symbol]
        mark = marks.get(symbol)
        upnl += unrealized_pnl(pos, mark if mark is not None else pos.entry_px)
    return acct.cash + upnl


# ----------------------------------------------------------------------------------------- matching


def crosses(side: Side, limit: float, mark: float) -> bool:
    """A buy at or above the mark (a sell at or below it) takes liquidity at once."""
    return limit >= mark if side == "buy" else limit <= mark


def trigger_fires(order: Order, mark: float) -> bool:
    """Hyperliquid's trigger direction: a take-profit sell (closing a long) fires at or above its price, a
    stop-loss sell at or below; buys (closing a short) the other way round."""
    assert order.trigger_px is not None
    above = mark >= order.trigger_px
    below = mark <= order.trigger_px
    if order.kind == "take_profit":
        return above if order.side == "sell" else below
    return below if order.side == "sell" else above


@dataclass(frozen=True, slots=True)
class FillEffect:
    closed: float  # coins of the open position this fill reduces
    opened: float  # coins it opens or adds (in its own direction)
    realized: float  # gross PnL of the reduced part
    released: float  # margin the reduced part frees
    added: float  # margin the opened part takes


def _signed(side: Side, size: float) -> float:
    return size if side == "buy" else -size


def preview_fill(pos: Position | None, side: Side, px: float, size: float, leverage: float) -> FillEffect:
    """What a fill would do to a position, without doing it."""
    if pos is None or (pos.size > 0) == (side == "buy"):
        return FillEffect(0.0, size, 0.0, 0.0, initial_margin(px * size, leverage))
    held = abs(pos.size)
    closed = min(size, held)
    if held - closed <= DUST * held:
        closed = held
    opened = size - closed
    if opened <= DUST * size:
        opened = 0.0
    realized = (px - pos.entry_px) * (closed if pos.size > 0 else -closed)
    released = pos.margin if closed == held else pos.margin * (closed / held)
    added = initial_margin(px * opened, leverage) if opened else 0.0
    return FillEffect(closed, opened, realized, released, added)


def apply_fill(acct: Account, symbol: str, side: Side, px: float, size: float, fee_usd: float,
               leverage: float) -> FillEffect:
    """Apply one fill to the account: position (entry is the size-weighted average, as the fill book's),
    margin, cash (realized PnL minus the fee)."""
    pos = acct.positions.get(symbol)
    eff = preview_fill(pos, side, px, size, leverage)
    if eff.closed:
        assert pos is not None
        if eff.closed == abs(pos.size):
            del acct.positions[symbol]
            pos = None
        else:
            keep = abs(pos.size) - eff.closed
            pos.size = keep if pos.size > 0 else -keep
            pos.margin -= eff.released
    if eff.opened:
        if pos is None:
            acct.positions[symbol] = Position(symbol, _signed(side, eff.opened), px, leverage, eff.added)
        else:
            held = abs(pos.size)
            qty = held + eff.opened
            pos.entry_px = (pos.entry_px * held + px * eff.opened) / qty
            pos.size = qty if pos.size > 0 else -qty
            pos.margin += eff.added
            pos.leverage = leverage
    acct.cash += eff.realized - fee_usd
    return eff
