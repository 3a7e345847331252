"""The trading flows of design 2.4 ("Trades") in the order of 4.1: every Postgres write of a batch's
fills, trades and equity snapshots happens in the batch's transaction, the trades stream's outbox
entries included (``trades.outbox``); Redis learns after commit (positions hash under its lock, recent
trades, the outbox published to the trades stream).
Positions and their closes have their own module (``trades.positions``).

* ``fill``: stored in ``fills`` (natural key model_id, tid), then folded by the model's fill book
  (``trades.book``) into trades, positions and equity snapshots. Fills later than the book's last one
  are applied incrementally; an earlier (late) fill, a book computed with another starting capital, or
  a model without a book whose ledger holds older fills (a book lost with a rollback of migration 003)
  folds the model's whole ledger again and the rows it no longer produces are removed, so the result
  never depends on arrival order.
* ``model`` events that change a starting capital fold the model's ledger again
  (:func:`refold_stale_books`), so the equity history is what a fresh ingest of the final state gives.
* ``trade``: a closed round trip as given (nof1 shape), upserted by id.
* ``equity_snapshot``: upserted by (model_id, ts_ms); a millisecond that has fills keeps their value.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from psycopg import AsyncConnection

from nof0.db.arrays import last_by_key
from nof0.kernel.events import EquitySnapshot, Fill, Trade
from nof0.kernel.stage import Staged
from nof0.runtime import Runtime
from nof0.timefmt import s_to_ms
from nof0.trades import repository as repo
from nof0.trades.book import FillBook, fill_order
from nof0.trades.cache import TradeChange, publish_positions, publish_recent_trades
from nof0.trades.outbox import publish_outbox, write_entries
from nof0.traders.repository import get_starting_capitals

__all__ = ["stage_fills", "stage_trades", "stage_equity_snapshots", "trade_event_row", "refold_stale_books",
           "announce", "upsert_trade_rows"]

_DEFAULT_CAPITAL = 10_000.0  # accounts.starting_capital_usd's default


async def announce(conn: AsyncConnection, staged: Staged, changes: list[TradeChange], position_models: set[str]
                   ) -> Staged:
    """Write the trade changes' outbox entries (in the caller's transaction) and ask for the Redis writes
    that trade changes and position changes need after commit."""
    if position_models:
        staged.then(publish_positions, *sorted(position_models))
    if changes:
        await write_entries(conn, changes)
        staged.then(publish_outbox, *changes)
        staged.then(publish_recent_trades, *sorted({row["model_id"] for _, row in changes}))
    staged.models |= position_models | {row["model_id"] for _, row in changes}
    return staged


async def upsert_trade_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[TradeChange]:
    by_id = {r["id"]: r for r in rows}
    return [("add" if inserted else "update", by_id[i]) for i, inserted in await repo.upsert_trades(conn, rows)]


# ------------------------------------------------------------------------------------------ fills


async def stage_fills(rt: Runtime, conn: AsyncConnection, fills: list[Fill]) -> Staged:
    models = list(map(attrgetter("model_id"), fills))
    keys = list(zip(models, map(attrgetter("tid"), fills)))
    if len(set(keys)) == len(keys):  # a feed's batch: no key twice
        unique = fills[::-1]
    else:
        unique = list({(f.model_id, f.tid): f for f in reversed(fills)}.values())  # first of each key, like the table
    await repo.lock_models(conn, models)
    stored = await repo.insert_fills(conn, unique)
    staged = Staged(changed=len(stored), duplicates=len(fills) - len(stored))
    arrivals: dict[str, list[Fill]] = {}
    new = set(stored) if len(stored) < len(unique) else None  # None: every fill was new
    for f in unique:
        if new is None or (f.model_id, f.tid) in new:
            arrivals.setdefault(f.model_id, []).append(f)
    staged.models = set(arrivals)
    return staged.merge(await _fold_books(conn, arrivals)) if arrivals else staged


async def refold_stale_books(conn: AsyncConnection, model_ids: list[str]) -> Staged:
    """Fold again the ledgers of the models whose fill book is stale (another starting capital, or no book
    beside stored fills); what to publish is returned. For ``model`` events, after the account upsert."""
    with_fills = sorted(await repo.list_models_with_fills(conn, model_ids))
    if not with_fills:
        return Staged()
    stored = await repo.get_fill_books(conn, with_fills)
    capitals = await get_starting_capitals(conn, with_fills)
    stale = [m for m in with_fills
             if m not in stored or not FillBook.load(m, stored[m]).is_current(capitals.get(m, _DEFAULT_CAPITAL))]
    if not stale:
        return Staged()
    await repo.lock_models(conn, stale)  # only these: a capital change is rare, fills are not
    return await _fold_books(conn, {m: [] for m in stale})


async def _fold_books(conn: AsyncConnection, arrivals: dict[str, list[Fill]]) -> Staged:
    """Bring each model's fill book up to date with its newly stored fills (none: only when stale); the
    caller holds the models' locks. Returns the Redis writes to make after commit.

    The models' rows are written together, one statement per table for the batch: a book applied
    incrementally only adds round trips closed by fills just stored (new rows: a binary COPY, the upsert
    only when one was there) and snapshots after its last millisecond; a book folded again upserts and
    removes what it no longer produces. Trade changes stay in model order, as the outbox announces them."""
    models = sorted(arrivals)
    stored = await repo.get_fill_books(conn, models)
    capitals = await get_starting_capitals(conn, models)
    changes_of: dict[str, list[TradeChange]] = {}
    position_models: set[str] = set()
    books: list[tuple[str, int, int, dict[str, Any]]] = []
    new_trades: list[dict[str, Any]] = []  # round trips of incremental books
    positions: list[dict[str, Any]] = []
    snapshots: list[tuple[str, int, float, float, float]] = []  # may be stored already: upserted
    new_snapshots: list[tuple[str, int, float, float, float]] = []  # after the book's last millisecond
    for model_id in models:
        capital = capitals.get(model_id, _DEFAULT_CAPITAL)
        arrived = sorted(arrivals[model_id], key=fill_order)
        book = FillBook.load(model_id, stored[model_id]) if model_id in stored else None
        incremental = book is not None and book.is_current(capital) and (not arrived or book.is_after(arrived[0]))
        if incremental and not arrived:
            continue  # a current book and nothing new
        if not incremental:
            # a late fill, another starting capital, or no book (new model, or a book lost with 003's rollback)
            book = FillBook(model_id, capital)
            arrived = [Fill(**row) for row in await repo.list_fills(conn, model_id)]
        assert book is not None
        last_ms = book.state.last_ts_ms if incremental else None  # its snapshot is stored: updated, not new
        result = book.apply_all(arrived)
        if incremental:
            new_trades += result.trades.values()
        else:
            trades = await upsert_trade_rows(conn, list(result.trades.values()))
            deleted = await repo.delete_trades_except(conn, model_id, "fills", list(result.trades))
            changes_of[model_id] = trades + [("delete", row) for row in deleted]
            if await repo.delete_positions_except(conn, model_id, list(result.positions)):
                position_models.add(model_id)
        positions += result.positions.values()
        for ts in sorted(result.snapshots):
            (new_snapshots if last_ms is not None and ts > last_ms else snapshots).append(
                (model_id, ts, *result.snapshots[ts]))
        books.append((model_id, book.state.last_ts_ms, book.state.last_tid, book.dump()))
    if new_trades:
        added = ([("add", row) for row in new_trades] if await repo.insert_new_trades(conn, new_trades)
                 else await upsert_trade_rows(conn, new_trades))
        for change in added:
            changes_of.setdefault(change[1]["model_id"], []).append(change)
    position_models |= set((await repo.upsert_positions(conn, positions, "fills")).values())
    await repo.upsert_fill_snapshots(conn, new_snapshots, new=True)
    await repo.upsert_fill_snapshots(conn, snapshots)
    if books:
        await repo.upsert_fill_books(conn, books)
    changes = [change for model_id in models for change in changes_of.get(model_id, [])]
    staged = await announce(conn, Staged(), changes, position_models)
    staged.models |= {b[0] for b in books}  # their equity history may have changed
    return staged


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
    changes = await upsert_trade_rows(conn, rows)
    return await announce(conn, Staged(changed=len(changes), duplicates=len(events) - len(changes)), changes, set())


# ------------------------------------------------------------------------------------------ equity


async def stage_equity_snapshots(rt: Runtime, conn: AsyncConnection, events: list[EquitySnapshot]) -> Staged:
    rows = last_by_key(
        ({"model_id": e.model_id, "ts_ms": e.ts_ms, "equity_usd": e.equity_usd, "realized_pnl": e.realized_pnl,
          "unrealized_pnl": e.unrealized_pnl} for e in events),
        lambda r: (r["model_id"], r["ts_ms"]),
    )
    written = await repo.upsert_event_snapshots(conn, rows)
    staged = Staged(changed=len(written), duplicates=len(events) - len(written))
    staged.models = set(written)
    return staged
