"""A model's fill book: folds fills, in ``(ts_ms, tid)`` order, into positions, closed trades and the
equity snapshots they imply (design 2.4 "Trades", steps 1-4). Pure: no database, no Redis.

Rules (``docs/events.md`` states them for producers):

* A fill in the direction of the open position (buy on a long, sell on a short) opens or extends it:
  the entry price becomes the size-weighted average and the fee is added to the position's
  commission. The opening fill's tid names the position.
* A fill against it reduces, closes or flips it. The reduced size becomes a closed trade whose entry
  fee is the position's commission pro rata, whose exit fee is the fill's fee pro rata (the rest opens
  the flipped position), and whose gross PnL is the price move times the signed size.
* Sizes within a relative 1e-9 of each other are equal (float dust never leaves a phantom position).
* After the last fill of each millisecond the book's equity is recorded:
  ``equity = starting capital + realized + unrealized`` where ``realized`` is the net PnL of the
  closed trades minus the commissions already paid on open positions, and ``unrealized`` marks each
  open position at its own last fill price (the fill ledger alone decides, so any arrival order of
  the same fills gives the same snapshots).

The state after the last fill is serialised exactly (:meth:`FillBook.dump`), so applying later fills
to a loaded book gives the same bits as folding the whole ledger from the start. It records the
starting capital its snapshots were computed with: a book whose capital is no longer the account's is
stale (:meth:`FillBook.is_current`) and the ledger is folded again, so a change of capital gives what a
fresh ingest of the final state gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import msgspec

from nof0.kernel.events import Fill
from nof0.trades.payloads import signed_quantity
from nof0.trades.rows import closed_trade_row, derived_id

__all__ = ["FillBook", "BookState", "Lot", "FoldResult", "fill_order"]

_DUST = 1e-9


class Lot(msgspec.Struct, kw_only=True):
    """The open position of one symbol."""

    position_id: str
    side: str
    qty: float
    entry_price: float
    commission: float  # entry fees not yet attributed to a closed trade
    closed_pnl: float  # what the venue has booked on this position so far (fees negative)
    mark: float  # last fill price
    entry_ts_ms: int
    entry_tid: int
    entry_oid: int | None = None
    entry_crossed: bool | None = None
    entry_liquidation: dict[str, Any] | None = None
    leverage: float | None = None
    confidence: float | None = None
    exit_plan: dict[str, Any] | None = None


class BookState(msgspec.Struct, kw_only=True):
    capital: float | None = None  # the starting capital of the snapshots (None: a book from before it was kept)
    realized: float = 0.0  # net PnL of every closed trade, summed in fill order
    last_ts_ms: int = 0
    last_tid: int = -1
    lots: dict[str, Lot] = msgspec.field(default_factory=dict)


@dataclass
class FoldResult:
    trades: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # ts -> equity, realized, unrealized


def fill_order(fill: Fill) -> tuple[int, int]:
    return (fill.ts_ms, fill.tid)


class FillBook:
    def __init__(self, model_id: str, starting_capital: float) -> None:
        """An empty book of a model whose account started with ``starting_capital``."""
        self.model_id = model_id
        self.state = BookState(capital=starting_capital)

    @property
    def capital(self) -> float:
        return self.state.capital if self.state.capital is not None else 0.0

    # -------------------------------------------------------------- persistence
    def dump(self) -> dict[str, Any]:
        return msgspec.to_builtins(self.state)

    @classmethod
    def load(cls, model_id: str, doc: dict[str, Any]) -> "FillBook":
        book = cls(model_id, 0.0)
        book.state = msgspec.convert(doc, BookState)
        return book

    def is_current(self, starting_capital: float) -> bool:
        """True when the book's snapshots were computed with the account's present starting capital."""
        return self.state.capital == starting_capital

    def is_after(self, fill: Fill) -> bool:
        """True when ``fill`` comes after every fill already in the book (it can be applied incrementally)."""
        return fill_order(fill) > (self.state.last_ts_ms, self.state.last_tid)

    # -------------------------------------------------------------- folding
    def apply_all(self, fills: Iterable[Fill]) -> FoldResult:
        """Apply fills (already sorted by :func:`fill_order`); returns every row they create or change."""
        out = FoldResult()
        # each position's row is made once, from its lot as the last fill left it (a lot is not changed
        # after its close): (symbol, lot, closing fill or None) by position id meanwhile
        touched: dict[str, tuple[str, Lot, Fill | None]] = {}
        pending_ts: int | None = None
        for fill in fills:
            if pending_ts is not None and fill.ts_ms != pending_ts:
                out.snapshots[pending_ts] = self.equity()
            self._apply(fill, out, touched)
            pending_ts = fill.ts_ms
            self.state.last_ts_ms, self.state.last_tid = fill.ts_ms, fill.tid
        if pending_ts is not None:
            out.snapshots[pending_ts] = self.equity()
        out.positions = {pid: self._position_row(*t) for pid, t in touched.items()}
        return out

    def equity(self) -> tuple[float, float, float]:
        unrealized = fees = 0.0
        for symbol in sorted(self.state.lots):  # a fixed order: float sums must not depend on history
            lot = self.state.lots[symbol]
            unrealized += (lot.mark - lot.entry_price) * signed_quantity(lot.side, lot.qty)
            fees += lot.commission
        realized = self.state.realized - fees
        return self.capital + realized + unrealized, realized, unrealized

    def _apply(self, fill: Fill, out: FoldResult, touched: dict[str, tuple[str, Lot, Fill | None]]) -> None:
        lots = self.state.lots
        lot = lots.get(fill.symbol)
        buying = fill.side == "buy"
        if lot is None:
            lot = self._open(fill, fill.size, fill.fee_usd)
        elif (lot.side == "long") == buying:
            self._extend(lot, fill)
        else:
            lot = self._reduce(lot, fill, out, touched)
        if lot is not None:
            touched[lot.position_id] = (fill.symbol, lot, None)

    def _open(self, fill: Fill, size: float, fee: float) -> Lot:
        lot = Lot(
            position_id=derived_id(self.model_id, "position", fill.symbol, fill.tid),
            side="long" if fill.side == "buy" else "short",
            qty=size,
            entry_price=fill.price,
            commission=fee,
            closed_pnl=0.0 - fee,  # never -0.0
            mark=fill.price,
            entry_ts_ms=fill.ts_ms,
            entry_tid=fill.tid,
            entry_oid=fill.oid,
            entry_crossed=fill.crossed,
            entry_liquidation=fill.liquidation,
            leverage=fill.leverage,
            confidence=fill.confidence,
            exit_plan=fill.exit_plan,
        )
        self.state.lots[fill.symbol] = lot
        return lot

    @staticmethod
    def _extend(lot: Lot, fill: Fill) -> None:
        qty = lot.qty + fill.size
        lot.entry_price = (lot.entry_price * lot.qty + fill.price * fill.size) / qty
        lot.qty = qty
        lot.commission += fill.fee_usd
        lot.closed_pnl -= fill.fee_usd
        lot.mark = fill.price
        if fill.leverage is not None:
            lot.leverage = fill.leverage
        if fill.confidence is not None:
            lot.confidence = fill.confidence
        if fill.exit_plan is not None:
            lot.exit_plan = fill.exit_plan

    def _reduce(self, lot: Lot, fill: Fill, out: FoldResult, touched: dict[str, tuple[str, Lot, Fill | None]]
                ) -> Lot | None:
        """Returns the symbol's open lot afterwards (the reduced one, the flipped one, or None)."""
        closed = min(fill.size, lot.qty)
        if lot.qty - closed <= _DUST * lot.qty:
            closed = lot.qty
        remainder = fill.size - closed
        if remainder <= _DUST * fill.size:
            remainder = 0.0
        exit_fee = fill.fee_usd * (closed / fill.size) if remainder else fill.fee_usd
        entry_fee = lot.commission * (closed / lot.qty) if closed < lot.qty else lot.commission
        trade = closed_trade_row(
            id=derived_id(self.model_id, fill.symbol, lot.entry_tid, fill.tid),
            model_id=self.model_id, symbol=fill.symbol, side=lot.side, size=closed,
            entry_price=lot.entry_price, entry_ts_ms=lot.entry_ts_ms, exit_price=fill.price, exit_ts_ms=fill.ts_ms,
            entry_fee=entry_fee, exit_fee=exit_fee, origin="fills",
            leverage=lot.leverage, confidence=lot.confidence, exit_plan=lot.exit_plan,
            entry_oid=lot.entry_oid, exit_oid=fill.oid, entry_tid=lot.entry_tid, exit_tid=fill.tid,
            entry_crossed=lot.entry_crossed, exit_crossed=fill.crossed,
            entry_liquidation=lot.entry_liquidation, exit_liquidation=fill.liquidation,
        )
        out.trades[trade["id"]] = trade
        self.state.realized += trade["realized_net_pnl"]
        lot.closed_pnl += trade["exit_closed_pnl"]
        lot.mark = fill.price
        if closed < lot.qty:
            lot.qty -= closed
            lot.commission -= entry_fee
            return lot
        del self.state.lots[fill.symbol]
        touched[lot.position_id] = (fill.symbol, lot, fill)
        return self._open(fill, remainder, fill.fee_usd - exit_fee) if remainder else None

    def _position_row(self, symbol: str, lot: Lot, exit_fill: Fill | None = None) -> dict[str, Any]:
        return {
            "id": lot.position_id,
            "model_id": self.model_id,
            "symbol": symbol,
            "side": lot.side,
            "entry_price": lot.entry_price,
            "quantity": lot.qty,
            "leverage": lot.leverage,
            "confidence": lot.confidence,
            "entry_ts_ms": lot.entry_ts_ms,
            "commission": lot.commission,
            "status": "closed" if exit_fill else "open",
            "exit_ts_ms": exit_fill.ts_ms if exit_fill else None,
            "exit_price": exit_fill.price if exit_fill else None,
            "metadata": {"closed_pnl": lot.closed_pnl},
            "entry_oid": lot.entry_oid,
            "exit_plan": lot.exit_plan if lot.exit_plan is not None else {},
            "origin": "fills",
            "updated_ts_ms": None,  # versions are for position events; the fill ledger orders these rows
            "version_md5": None,
        }
