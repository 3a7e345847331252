"""The trading flows of design 2.4 ("Trades", "Positions") in the order of 4.1: every Postgres write
of a batch's fills, trades, positions and equity snapshots happens in the batch's transaction; Redis
learns after commit (positions hash under its lock, recent trades, the trades stream behind the
idempotency guard).

* ``fill``: stored in ``fills`` (natural key model_id, tid), then folded by the model's fill book
  (``trades.book``) into trades, positions and equity snapshots. Fills later than the book's last one
  are applied incrementally; an earlier (late) fill refolds the model's whole ledger and the rows it
  no longer produces are removed, so the result never depends on arrival order.
* ``trade``: a closed round trip as given (nof1 shape), upserted by id.
* ``position`` / ``position_close``: open or adjust by id; a close is recorded as a fact and applied
  when its position is open (at once, or when the position arrives), producing the round trip.
* ``equity_snapshot``: upserted by (model_id, ts_ms); a millisecond that has fills keeps their value.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.db.arrays import last_by_key
from nof0.ingest.events import EquitySnapshot, Fill, Position, PositionClose, Trade
from nof0.ingest.stage import Staged
from nof0.runtime import Runtime
from nof0.timefmt import s_to_ms
from nof0.trades import repository as repo
from nof0.trades.book import FillBook, fill_order
from nof0.trades.cache import TradeChange, publish_positions, publish_recent_trades, publish_trade_changes
from nof0.trades.rows import closed_trade_row, derived_id
from nof0.traders.repository import get_starting_capitals

__all__ = ["stage_fills", "stage_trades", "stage_positions", "stage_position_closes", "stage_equity_snapshots",
           "trade_event_row"]

_DEFAULT_CAPITAL = 10_000.0  # accounts.starting_capital_usd's default


def _announce(staged: Staged, changes: list[TradeChange], position_models: set[str]) -> Staged:
    if position_models:
        staged.then(publish_positions, *sorted(position_models))
    if changes:
        staged.then(publish_trade_changes, *changes)
        staged.then(publish_recent_trades, *sorted({row["model_id"] for _, row in changes}))
    return staged


async def _upsert_trades(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[TradeChange]:
    by_id = {r["id"]: r for r in rows}
    return [("add" if inserted else "update", by_id[i]) for i, inserted in await repo.upsert_trades(conn, rows)]


# ------------------------------------------------------------------------------------------ fills


def _fill_row(f: Fill) -> dict[str, Any]:
    return {name: getattr(f, name) for name in repo.FILL_TYPES}


async def stage_fills(rt: Runtime, conn: AsyncConnection, fills: list[Fill]) -> Staged:
    unique = list({(f.model_id, f.tid): f for f in reversed(fills)}.values())  # first of each key, like the table
    await repo.lock_models(conn, [f.model_id for f in unique])
    new = set(await repo.insert_fills(conn, [_fill_row(f) for f in unique]))
    staged = Staged(changed=len(new), duplicates=len(fills) - len(new))
    models = sorted({m for m, _ in new})
    if not models:
        return staged
    stored = await repo.get_fill_books(conn, models)
    capitals = await get_starting_capitals(conn, models)
    changes: list[TradeChange] = []
    position_models: set[str] = set()
    books: list[tuple[str, int, int, dict[str, Any]]] = []
    arrivals: dict[str, list[Fill]] = {}
    for f in unique:
        if (f.model_id, f.tid) in new:
            arrivals.setdefault(f.model_id, []).append(f)
    for model_id in models:
        arrived = sorted(arrivals[model_id], key=fill_order)
        capital = capitals.get(model_id, _DEFAULT_CAPITAL)
        book = FillBook.load(model_id, capital, stored.get(model_id))
        refold = not book.is_after(arrived[0])
        if refold:  # a late fill: fold the whole ledger again
            book = FillBook(model_id, capital)
            arrived = [Fill(**row) for row in await repo.list_fills(conn, model_id)]
        result = book.apply_all(arrived)
        changes += await _upsert_trades(conn, list(result.trades.values()))
        if refold:
            changes += [("delete", row) for row in await repo.delete_trades_except(conn, model_id, "fills", list(result.trades))]
            if await repo.delete_positions_except(conn, model_id, list(result.positions)):
                position_models.add(model_id)
        position_models |= set((await repo.upsert_positions(conn, list(result.positions.values()), "fills")).values())
        await repo.upsert_fill_snapshots(conn, model_id, result.snapshots)
        books.append((model_id, book.state.last_ts_ms, book.state.last_tid, book.dump()))
    await repo.upsert_fill_books(conn, books)
    return _announce(staged, changes, position_models)


# ------------------------------------------------------------------------------------------ trades


def trade_event_row(ev: Trade) -> dict[str, Any]:
    row = {name: getattr(ev, name) for name in repo.TRADE_TYPES if name not in ("entry_ts_ms", "exit_ts_ms", "origin")}
    row["entry_ts_ms"] = s_to_ms(ev.entry_time)
    row["exit_ts_ms"] = s_to_ms(ev.exit_time)
    row["exit_plan"] = ev.exit_plan if ev.exit_plan is not None else {}
    row["origin"] = "event"
    return row


async def stage_trades(rt: Runtime, conn: AsyncConnection, events: list[Trade]) -> Staged:
    rows = last_by_key((trade_event_row(ev) for ev in events), lambda r: r["id"])
    changes = await _upsert_trades(conn, rows)
    return _announce(Staged(changed=len(changes), duplicates=len(events) - len(changes)), changes, set())


# ------------------------------------------------------------------------------------------ positions


def _position_row(ev: Position) -> dict[str, Any]:
    return {
        "id": ev.id, "model_id": ev.model_id, "symbol": ev.symbol, "side": ev.side, "entry_price": ev.entry_price,
        "quantity": ev.quantity, "leverage": ev.leverage, "confidence": ev.confidence, "entry_ts_ms": ev.entry_ts_ms,
        "commission": ev.commission, "status": "open", "exit_ts_ms": None, "exit_price": None,
        "metadata": ev.metadata if ev.metadata is not None else {}, "entry_oid": ev.entry_oid,
        "exit_plan": ev.exit_plan if ev.exit_plan is not None else {}, "origin": "event",
    }


async def _apply_closes(conn: AsyncConnection, position_ids: list[str]) -> tuple[list[TradeChange], set[str]]:
    """Close the open positions among ``position_ids`` that have a recorded close; each becomes a trade."""
    closed = await repo.close_positions(conn, position_ids)
    rows = [
        closed_trade_row(
            id=derived_id(p["model_id"], "close", p["id"]), model_id=p["model_id"], symbol=p["symbol"], side=p["side"],
            size=p["quantity"], entry_price=p["entry_price"], entry_ts_ms=p["entry_ts_ms"], exit_price=p["exit_price"],
            exit_ts_ms=p["exit_ts_ms"], entry_fee=p["commission"] or 0.0, exit_fee=p["exit_fee"] or 0.0,
            origin="position", leverage=p["leverage"], confidence=p["confidence"], exit_plan=p["exit_plan"],
            entry_oid=p["entry_oid"], exit_oid=p["exit_oid"],
        )
        for p in closed
    ]
    return await _upsert_trades(conn, rows), {p["model_id"] for p in closed}


async def stage_positions(rt: Runtime, conn: AsyncConnection, events: list[Position]) -> Staged:
    rows = last_by_key((_position_row(ev) for ev in events), lambda r: r["id"])
    changed = await repo.upsert_positions(conn, rows, "event")
    changes, closed_models = await _apply_closes(conn, list(changed))
    staged = Staged(changed=len(changed), duplicates=len(events) - len(changed))
    return _announce(staged, changes, set(changed.values()) | closed_models)


async def stage_position_closes(rt: Runtime, conn: AsyncConnection, events: list[PositionClose]) -> Staged:
    rows = list({ev.id: ev for ev in reversed(events)}.values())  # the first close of a position stands
    recorded = await repo.insert_position_closes(conn, [
        {"id": ev.id, "exit_price": ev.exit_price, "exit_ts_ms": ev.exit_ts_ms, "exit_oid": ev.exit_oid,
         "commission": ev.commission} for ev in rows
    ])
    changes, closed_models = await _apply_closes(conn, recorded)
    return _announce(Staged(changed=len(recorded), duplicates=len(events) - len(recorded)), changes, closed_models)


# ------------------------------------------------------------------------------------------ equity


async def stage_equity_snapshots(rt: Runtime, conn: AsyncConnection, events: list[EquitySnapshot]) -> Staged:
    rows = last_by_key(
        ({"model_id": e.model_id, "ts_ms": e.ts_ms, "equity_usd": e.equity_usd, "realized_pnl": e.realized_pnl,
          "unrealized_pnl": e.unrealized_pnl} for e in events),
        lambda r: (r["model_id"], r["ts_ms"]),
    )
    written = await repo.upsert_event_snapshots(conn, rows)
    return Staged(changed=written, duplicates=len(events) - written)
