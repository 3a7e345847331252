"""The paper accounts in Postgres: rebuilding an account after a restart, and the events that persist
its changes (engine.md "Exchange providers / sim": "its state after a restart is rebuilt from Postgres").

What is stored, all written through ``IngestService`` in one batch per change:

* ``sim_balances`` (asset ``USD``): the cash, the account's sequence, its leverage per symbol and the
  last funding hour settled, versioned by ``(ts_ms, seq)``;
* ``sim_orders``: every order's newest state (open ones are reloaded), client order ids included;
* ``fills``: the executions; positions and their isolated margins are rebuilt by folding them with the
  same :func:`~nof0.engine.exchange.sim.rules.apply_fill` the live engine ran, in the same order.

Ids (oids, tids) come from the account's sequence, which only grows and is stored with every change,
so ids handed out after a restart never collide with acknowledged ones, and a replayed batch is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from nof0.engine.exchange.sim.matching import Journal
from nof0.engine.exchange.sim.rules import Account, Order, apply_fill, available, equity, margin_used
from nof0.kernel.events import EquitySnapshot, Fill, ModelEvent, SimBalance, SimOrder
from nof0.sim import repository as sim_repo
from nof0.trades import repository as trades_repo

__all__ = ["Loaded", "load_account", "change_events", "order_from_row", "CASH_ASSET"]

CASH_ASSET = "USD"


@dataclass
class Loaded:
    account: Account
    by_cloid: dict[str, Order]
    new: bool  # no stored balance: the account opens with its starting capital


def order_from_row(row: dict[str, Any]) -> Order:
    return Order(
        oid=row["oid"], symbol=row["symbol"], side=row["side"], size=row["size"], kind=row["order_type"],
        ts_ms=row["ts_ms"], tif=row["tif"] or "Gtc", price=row["price"], trigger_px=row["trigger_px"],
        reduce_only=row["reduce_only"], leverage=row["leverage"] or 1.0, cloid=row["cloid"], status=row["status"],
        filled_size=row["filled_size"], avg_px=row["avg_px"], fee_usd=row["fee_usd"] or 0.0, reason=row["reason"],
        reserved=row["reserved_usd"] or 0.0, confidence=row["confidence"], exit_plan=row["exit_plan"],
        seq=row["seq"],
    )


async def load_account(conn: AsyncConnection, trader_id: str, starting_capital: float) -> Loaded:
    """The account as the last committed batch left it."""
    balances = {r["asset"]: r for r in await sim_repo.list_balances(conn, [trader_id])}
    fills = await trades_repo.list_fills(conn, trader_id)
    acct = Account(trader_id, 0.0)
    last_tid = 0
    for f in fills:  # (ts_ms, tid): the order the live engine applied them in
        apply_fill(acct, f["symbol"], f["side"], f["price"], f["size"], f["fee_usd"], f["leverage"] or 1.0)
        last_tid = max(last_tid, f["tid"])
        acct.ts_ms = max(acct.ts_ms, f["ts_ms"])
    cash = balances.get(CASH_ASSET)
    if cash is not None:
        acct.cash = cash["total"]
        acct.ts_ms = max(acct.ts_ms, cash["ts_ms"])
        acct.funding_ms = cash["funding_ms"] or 0
        acct.leverage = dict(cash["leverage"] or {})
    else:
        acct.cash += starting_capital  # realized PnL and fees of fills from before the sim kept a balance
    acct.orders = {r["oid"]: order_from_row(r) for r in await sim_repo.list_open_orders(conn, trader_id)}
    by_cloid = {r["cloid"]: order_from_row(r) for r in await sim_repo.list_cloid_orders(conn, trader_id)}
    acct.seq = max(cash["seq"] if cash is not None else 0, await sim_repo.get_max_oid(conn, trader_id), last_tid)
    return Loaded(acct, by_cloid, new=cash is None)


def _order_event(trader_id: str, o: Order, ts_ms: int, seq: int) -> SimOrder:
    return SimOrder(
        trader_id=trader_id, oid=o.oid, symbol=o.symbol, side=o.side, size=o.size, status=o.status, ts_ms=ts_ms,
        order_type=o.kind, price=o.price, filled_size=o.filled_size, reduce_only=o.reduce_only,
        tif=o.tif if o.tif in ("Ioc", "Gtc", "Alo") else None, trigger_px=o.trigger_px, cloid=o.cloid,
        leverage=o.leverage, avg_px=o.avg_px, fee_usd=o.fee_usd, reserved_usd=o.reserved, reason=o.reason,
        confidence=o.confidence, exit_plan=o.exit_plan, seq=seq,
    )


def change_events(acct: Account, journal: Journal, ts_ms: int, *, marks: dict[str, float], capital: float,
                  register: bool = False) -> list[Any]:
    """The events of one committed change of ``acct`` (already bumped to its new sequence): the model's
    registration when the account is new, its orders' states, its fills, its balance and, when funding
    was settled, an equity snapshot."""
    events: list[Any] = []
    if register:
        events.append(ModelEvent(id=acct.trader_id, starting_capital_usd=capital))
    for oid in sorted(journal.orders):
        events.append(_order_event(acct.trader_id, journal.orders[oid], ts_ms, acct.seq))
    for x in journal.fills:
        events.append(Fill(
            model_id=acct.trader_id, symbol=x.symbol, side=x.side, price=x.price, size=x.size, fee_usd=x.fee_usd,
            ts_ms=x.ts_ms, oid=x.oid, tid=x.tid, crossed=x.crossed, leverage=x.leverage, confidence=x.confidence,
            exit_plan=x.exit_plan, liquidation=x.liquidation,
        ))
    events.append(SimBalance(
        trader_id=acct.trader_id, asset=CASH_ASSET, total=acct.cash, available=available(acct), ts_ms=ts_ms,
        margin_used=margin_used(acct), funding_ms=acct.funding_ms or None, leverage=dict(acct.leverage) or None,
        seq=acct.seq,
    ))
    if journal.funding and not journal.fills:  # a fill's millisecond belongs to the fill book's snapshot
        eq = equity(acct, marks)
        events.append(EquitySnapshot(model_id=acct.trader_id, ts_ms=ts_ms, equity_usd=eq,
                                     realized_pnl=acct.cash - capital, unrealized_pnl=eq - acct.cash))
    return events
