"""The exchange provider interface (engine.md "Exchange providers") and the records it speaks.

Every call names the trader: the sim engine keeps one paper account per trader, the Hyperliquid
client one account per provider entry (it refuses a trader that is not bound to it). Orders are
acknowledged only after their state is durable (sim: committed through ``IngestService``; venue:
answered by ``/exchange``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "Side",
    "OrderType",
    "TimeInForce",
    "Trigger",
    "OrderRequest",
    "OrderResult",
    "OpenOrder",
    "PositionState",
    "AccountState",
    "Exchange",
    "ExchangeError",
]

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
TimeInForce = Literal["Ioc", "Gtc", "Alo"]


class ExchangeError(RuntimeError):
    """The exchange refused or could not process a call; the message never carries a secret."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """A take-profit or stop-loss trigger: fires when the mark crosses ``trigger_px``."""

    kind: Literal["tp", "sl"]
    trigger_px: float
    is_market: bool = True
    limit_px: float | None = None  # for a limit trigger


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    size: float  # coins, > 0
    order_type: OrderType = "market"
    price: float | None = None  # limit price (market orders: None)
    tif: TimeInForce = "Ioc"
    reduce_only: bool = False
    cloid: str | None = None  # client order id: a retried request with the same cloid is not placed twice
    trigger: Trigger | None = None
    leverage: float | None = None  # applied before the order when given
    # journal metadata carried onto the fill / trade (nof1's confidence and exit plan)
    confidence: float | None = None
    exit_plan: dict | None = None


@dataclass(frozen=True, slots=True)
class OrderResult:
    status: Literal["filled", "partially_filled", "resting", "rejected", "canceled"]
    oid: int | None = None
    filled_size: float = 0.0
    avg_price: float | None = None
    fee_usd: float = 0.0
    error: str | None = None  # why it was rejected


@dataclass(frozen=True, slots=True)
class OpenOrder:
    oid: int
    symbol: str
    side: Side
    size: float
    price: float | None
    order_type: str  # "limit" | "stop" | "take_profit"
    reduce_only: bool
    ts_ms: int
    trigger_px: float | None = None
    cloid: str | None = None


@dataclass(frozen=True, slots=True)
class PositionState:
    symbol: str
    side: Literal["long", "short"]
    size: float  # coins, > 0
    entry_price: float
    leverage: float
    margin_usd: float  # isolated margin
    unrealized_pnl: float
    liquidation_price: float | None = None
    mark_price: float | None = None


@dataclass(frozen=True, slots=True)
class AccountState:
    equity_usd: float  # balance + unrealized PnL
    available_usd: float  # free for new margin
    margin_used_usd: float
    positions: list[PositionState] = field(default_factory=list)


class Exchange(Protocol):
    name: str  # the key in exchange.yaml

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def place_order(self, trader_id: str, order: OrderRequest) -> OrderResult: ...

    async def cancel(self, trader_id: str, symbol: str, oid: int) -> bool: ...

    async def open_orders(self, trader_id: str) -> list[OpenOrder]: ...

    async def positions(self, trader_id: str) -> list[PositionState]: ...

    async def account(self, trader_id: str) -> AccountState: ...

    async def update_leverage(self, trader_id: str, symbol: str, leverage: float, *, is_cross: bool = False) -> None: ...

    async def close_position(self, trader_id: str, symbol: str) -> OrderResult: ...
