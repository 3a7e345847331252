"""Small builders of valid events for the ingest tests (one place for their defaults)."""

from __future__ import annotations

from datetime import datetime, timezone

from nof0.kernel.events import (
    ConversationMessage, DecisionCycle, EquitySnapshot, Fill, ModelEvent, Position, PositionClose, PriceTick,
    LlmCall, SimBalance, SimOrder, SymbolEvent, Trade, TraderState,
)

T0 = 1_761_400_000_000  # 2025-10-25T13:46:40Z, in ms


def model(id: str = "m1", **kw) -> ModelEvent:
    return ModelEvent(id=id, display_name=kw.pop("display_name", id.upper()), **kw)


def symbol(s: str = "BTC", **kw) -> SymbolEvent:
    return SymbolEvent(symbol=s, **kw)


def tick(s: str = "BTC", price: float = 100.0, dt: int = 0, **kw) -> PriceTick:
    return PriceTick(symbol=s, price=price, ts_ms=T0 + dt, **kw)


def fill(side: str, price: float, size: float, tid: int, dt: int | None = None, *, model_id: str = "m1",
         symbol: str = "BTC", fee: float = 0.0, **kw) -> Fill:
    return Fill(model_id=model_id, symbol=symbol, side=side, price=price, size=size, fee_usd=fee,
                ts_ms=T0 + (tid if dt is None else dt), oid=tid * 10, tid=tid, **kw)


def position(id: str = "p1", *, model_id: str = "m1", symbol: str = "BTC", side: str = "long", entry_price: float = 100.0,
             quantity: float = 2.0, dt: int = 0, **kw) -> Position:
    return Position(id=id, model_id=model_id, symbol=symbol, side=side, entry_price=entry_price, quantity=quantity,
                    entry_ts_ms=T0 + dt, **kw)


def close(id: str = "p1", exit_price: float = 110.0, dt: int = 1000, **kw) -> PositionClose:
    return PositionClose(id=id, exit_price=exit_price, exit_ts_ms=T0 + dt, **kw)


def trade(id: str = "m1_t1", *, model_id: str = "m1", symbol: str = "BTC", side: str = "long", dt: int = 0,
          **kw) -> Trade:
    base = dict(quantity=1.0 if side == "long" else -1.0, entry_price=100.0, exit_price=105.0,
                entry_time=(T0 + dt) / 1000, exit_time=(T0 + dt + 60_000) / 1000)
    base.update(kw)
    return Trade(id=id, model_id=model_id, symbol=symbol, side=side, **base)


def snapshot(model_id: str = "m1", dt: int = 0, equity: float = 10_000.0, **kw) -> EquitySnapshot:
    return EquitySnapshot(model_id=model_id, ts_ms=T0 + dt, equity_usd=equity, **kw)


def message(model_id: str = "m1", role: str = "user", content: str = "hi", dt: int = 0, **kw) -> ConversationMessage:
    return ConversationMessage(model_id=model_id, role=role, content=content, ts_ms=T0 + dt, **kw)


def cycle(model_id: str = "m1", n: int = 1, decisions: list | None = None, dt: int = 0, **kw) -> DecisionCycle:
    return DecisionCycle(model_id=model_id, cycle_number=n, decisions=decisions or [{"signal": "hold"}],
                         success=kw.pop("success", True),
                         executed_at=datetime.fromtimestamp((T0 + dt) / 1000, tz=timezone.utc), **kw)


def llm_call(trader_id: str = "m1", n: int = 1, attempt: int = 1, dt: int = 0, **kw) -> LlmCall:
    return LlmCall(trader_id=trader_id, cycle_number=n, attempt=attempt, model=kw.pop("model", "fake-ok"),
                   ts_ms=T0 + dt, outcome=kw.pop("outcome", "ok"), **kw)


def trader_state(trader_id: str = "m1", **kw) -> TraderState:
    return TraderState(trader_id=trader_id, exchange_provider=kw.pop("exchange_provider", "sim"),
                       market_provider=kw.pop("market_provider", "hyperliquid"), **kw)


def sim_order(trader_id: str = "m1", oid: int = 1, dt: int = 0, **kw) -> SimOrder:
    base = dict(symbol="BTC", side="buy", size=1.0, status="open")
    base.update(kw)
    return SimOrder(trader_id=trader_id, oid=oid, ts_ms=T0 + dt, **base)


def sim_balance(trader_id: str = "m1", asset: str = "USD", total: float = 10_000.0, dt: int = 0, **kw) -> SimBalance:
    return SimBalance(trader_id=trader_id, asset=asset, total=total, available=kw.pop("available", total),
                      ts_ms=T0 + dt, **kw)
