"""A small in-test exchange implementing ``nof0.engine.exchange.provider.Exchange`` for the traders'
unit tests (until the sim exchange is on main): market orders fill at the mark, fills go through
``IngestService`` like any venue's, client order ids are honoured, triggers rest as open orders."""

from __future__ import annotations

from dataclasses import dataclass, field

from nof0.engine.exchange.provider import AccountState, OpenOrder, OrderRequest, OrderResult, PositionState
from nof0.engine.market.state import MarketState
from nof0.ingest.service import IngestService
from nof0.kernel.events import Fill


@dataclass
class _Pos:
    side: str
    size: float
    entry: float
    leverage: float


@dataclass
class PaperExchange:
    ingest: IngestService
    market: MarketState
    clock: object
    name: str = "sim"
    fee_rate: float = 0.00045
    capital: float = 10_000.0
    positions_: dict[str, dict[str, _Pos]] = field(default_factory=dict)
    orders: dict[str, list[OpenOrder]] = field(default_factory=dict)
    realized: dict[str, float] = field(default_factory=dict)
    by_cloid: dict[str, OrderResult] = field(default_factory=dict)
    requests: list[tuple[str, OrderRequest]] = field(default_factory=list)
    _oid: int = 1000

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def _next(self) -> int:
        self._oid += 1
        return self._oid

    async def _fill(self, trader: str, symbol: str, side: str, size: float, order: OrderRequest | None) -> OrderResult:
        px = self.market.mark(symbol)
        oid = self._next()
        fee = px * size * self.fee_rate
        held = self.positions_.setdefault(trader, {})
        pos = held.get(symbol)
        sign = 1 if side == "buy" else -1
        if pos is None:
            held[symbol] = _Pos("long" if sign > 0 else "short", size, px, (order.leverage if order else None) or 1.0)
        else:
            pnl = (px - pos.entry) * min(size, pos.size) * (1 if pos.side == "long" else -1)
            self.realized[trader] = self.realized.get(trader, 0.0) + pnl
            pos.size -= size
            if pos.size <= 1e-12:
                del held[symbol]
        self.realized[trader] = self.realized.get(trader, 0.0) - fee
        await self.ingest.ingest([Fill(model_id=trader, symbol=symbol, side=side, price=px, size=size, fee_usd=fee,
                                       ts_ms=self.clock.now_ms(), oid=oid, tid=oid, crossed=True,
                                       leverage=order.leverage if order else None,
                                       confidence=order.confidence if order else None,
                                       exit_plan=order.exit_plan if order else None)])
        return OrderResult("filled", oid, size, px, fee)

    async def place_order(self, trader_id: str, order: OrderRequest) -> OrderResult:
        self.requests.append((trader_id, order))
        if order.cloid and order.cloid in self.by_cloid:
            return self.by_cloid[order.cloid]
        if order.trigger is not None:
            oo = OpenOrder(self._next(), order.symbol, order.side, order.size, None,
                           "take_profit" if order.trigger.kind == "tp" else "stop", True, self.clock.now_ms(),
                           order.trigger.trigger_px, order.cloid)
            self.orders.setdefault(trader_id, []).append(oo)
            res = OrderResult("resting", oo.oid)
        else:
            res = await self._fill(trader_id, order.symbol, order.side, order.size, order)
        if order.cloid:
            self.by_cloid[order.cloid] = res
        return res

    async def cancel(self, trader_id: str, symbol: str, oid: int) -> bool:
        before = self.orders.get(trader_id, [])
        self.orders[trader_id] = [o for o in before if o.oid != oid]
        return len(before) != len(self.orders[trader_id])

    async def open_orders(self, trader_id: str) -> list[OpenOrder]:
        return list(self.orders.get(trader_id, []))

    async def positions(self, trader_id: str) -> list[PositionState]:
        out = []
        for symbol, p in self.positions_.get(trader_id, {}).items():
            mark = self.market.mark(symbol)
            upnl = (mark - p.entry) * p.size * (1 if p.side == "long" else -1)
            out.append(PositionState(symbol, p.side, p.size, p.entry, p.leverage, p.size * p.entry / p.leverage,
                                     upnl, None, mark))
        return out

    async def account(self, trader_id: str) -> AccountState:
        positions = await self.positions(trader_id)
        equity = self.capital + self.realized.get(trader_id, 0.0) + sum(p.unrealized_pnl for p in positions)
        margin = sum(p.margin_usd for p in positions)
        return AccountState(equity, equity - margin, margin, positions)

    async def update_leverage(self, trader_id: str, symbol: str, leverage: float, *, is_cross: bool = False) -> None:
        return None

    async def close_position(self, trader_id: str, symbol: str) -> OrderResult:
        pos = self.positions_.get(trader_id, {}).get(symbol)
        if pos is None:
            return OrderResult("rejected", error="no position")
        return await self._fill(trader_id, symbol, "sell" if pos.side == "long" else "buy", pos.size, None)
