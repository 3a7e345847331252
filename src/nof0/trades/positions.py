"""The positions flow of design 2.4 ("Positions") and 4.1 ("Position close"): every write of a batch's
position and position_close events happens in its transaction; the positions hash, the recent trades
and the trades stream learn after commit.

* ``position``: open or adjust by id. A position's states are versioned
  (:func:`nof0.kernel.events.position_version`): a state replaces the stored one only when it is newer,
  so adjustments arriving in any order leave the newest, and a replayed state is a duplicate.
* A model holds **one open position per symbol** (nof1 and Hyperliquid keep one position per symbol per
  account, and the positions hash is keyed by symbol): a position that would be a second open one on
  its symbol, under another id, is refused naming both ids and the symbol.
* ``position_close``: recorded as a fact (the first close of a position stands) and applied to the
  position's newest state, at once or when the position arrives; a newer state of a closed position is
  closed again, so the round trip (a trade, ``origin = 'position'``) is always the newest state's.
* A close dated before its position's entry can never apply: it is refused (field ``exit_ts_ms``) and
  forgotten, whichever of the two arrived first; a newer state whose entry moves after its close
  reopens the position and removes the round trip.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.kernel.decode import encode_event
from nof0.kernel.events import Position, PositionClose, position_version
from nof0.kernel.stage import Staged, StageRejection
from nof0.runtime import Runtime
from nof0.trades import repository as repo
from nof0.trades.cache import TradeChange
from nof0.trades.pipeline import announce, upsert_trade_rows
from nof0.trades.rows import closed_trade_row, derived_id

__all__ = ["stage_positions", "stage_position_closes", "close_trade_id"]

Version = tuple[int, str]


def close_trade_id(model_id: str, position_id: str) -> str:
    """The id of the round trip a position close produces."""
    return derived_id(model_id, "close", position_id)


def _position_row(ev: Position, version: Version) -> dict[str, Any]:
    return {
        "id": ev.id, "model_id": ev.model_id, "symbol": ev.symbol, "side": ev.side, "entry_price": ev.entry_price,
        "quantity": ev.quantity, "leverage": ev.leverage, "confidence": ev.confidence, "entry_ts_ms": ev.entry_ts_ms,
        "commission": ev.commission, "status": "open", "exit_ts_ms": None, "exit_price": None,
        "metadata": ev.metadata if ev.metadata is not None else {}, "entry_oid": ev.entry_oid,
        "exit_plan": ev.exit_plan if ev.exit_plan is not None else {}, "origin": "event",
        "updated_ts_ms": version[0], "version_md5": version[1],
    }


def _round_trip(p: dict[str, Any]) -> dict[str, Any]:
    return closed_trade_row(
        id=close_trade_id(p["model_id"], p["id"]), model_id=p["model_id"], symbol=p["symbol"], side=p["side"],
        size=p["quantity"], entry_price=p["entry_price"], entry_ts_ms=p["entry_ts_ms"], exit_price=p["exit_price"],
        exit_ts_ms=p["exit_ts_ms"], entry_fee=p["commission"] or 0.0, exit_fee=p["exit_fee"] or 0.0,
        origin="position", leverage=p["leverage"], confidence=p["confidence"], exit_plan=p["exit_plan"],
        entry_oid=p["entry_oid"], exit_oid=p["exit_oid"],
    )


def _before_entry(close: dict[str, Any]) -> str:
    return (f"is before the entry_ts_ms {close['entry_ts_ms']} of position {close['position_id']!r}:"
            " the close can never apply and is discarded")


async def _settle(conn: AsyncConnection, position_ids: list[str]) -> tuple[Staged, list[dict[str, Any]]]:
    """Apply the recorded closes of ``position_ids`` to their positions; returns what to publish and the
    closes discarded for dating before their position's entry."""
    discarded = await repo.discard_closes_before_entry(conn, position_ids)
    changes: list[TradeChange] = []
    if discarded:  # a close that had applied to an earlier state: its round trip no longer exists
        gone = await repo.delete_position_trades(conn, [close_trade_id(d["model_id"], d["position_id"])
                                                        for d in discarded])
        changes += [("delete", row) for row in gone]
    closed = await repo.close_positions(conn, position_ids)
    changes += await upsert_trade_rows(conn, [_round_trip(p) for p in closed])
    return await announce(conn, Staged(), changes, {p["model_id"] for p in closed}), discarded


async def stage_position_closes(rt: Runtime, conn: AsyncConnection, events: list[PositionClose]) -> Staged:
    first = {ev.id: ev for ev in reversed(events)}  # the first close of a position stands
    recorded = await repo.insert_position_closes(conn, [
        {"id": ev.id, "exit_price": ev.exit_price, "exit_ts_ms": ev.exit_ts_ms, "exit_oid": ev.exit_oid,
         "commission": ev.commission} for ev in first.values()
    ])
    settled, discarded = await _settle(conn, recorded)
    staged = Staged(changed=len(recorded) - len(discarded), duplicates=len(events) - len(recorded))
    staged.rejected = [StageRejection(first[d["position_id"]], "exit_ts_ms", d["exit_ts_ms"], _before_entry(d))
                       for d in discarded]
    return staged.merge(settled)


async def stage_positions(rt: Runtime, conn: AsyncConnection, events: list[Position]) -> Staged:
    newest: dict[str, tuple[Version, Position]] = {}  # per id, in order of first arrival
    for ev in events:
        version = position_version(ev)
        if ev.id not in newest or version > newest[ev.id][0]:
            newest[ev.id] = (version, ev)
    ids = list(newest)
    stored = await repo.get_position_versions(conn, ids)
    closes = await repo.get_position_closes(conn, ids)
    holders: dict[tuple[str, str], set[str]] = {}  # (model, symbol) -> ids of its open positions
    for r in await repo.list_open_position_ids(conn, sorted({ev.model_id for _, ev in newest.values()})):
        holders.setdefault((r["model_id"], r["symbol"]), set()).add(r["id"])

    rows: list[dict[str, Any]] = []
    refused: list[StageRejection] = []
    for version, ev in newest.values():
        cur = stored.get(ev.id)
        if cur is not None and (cur["origin"] != "event" or (
                cur["updated_ts_ms"] is not None and version <= (cur["updated_ts_ms"], cur["version_md5"]))):
            continue  # not newer than the stored state: a duplicate
        place = (ev.model_id, ev.symbol)
        close = closes.get(ev.id)
        opens = close is None or close["exit_ts_ms"] < ev.entry_ts_ms
        open_here = cur is not None and cur["status"] == "open" and (cur["model_id"], cur["symbol"]) == place
        others = holders.get(place, set()) - {ev.id}
        if opens and not open_here and others:
            refused.append(StageRejection(ev, "symbol", ev.symbol, (
                f"model {ev.model_id!r} already has an open {ev.symbol} position {', '.join(map(repr, sorted(others)))};"
                f" position {ev.id!r} would be a second one (one position per symbol: close it first)")))
            continue
        if cur is not None and cur["status"] == "open":
            holders.get((cur["model_id"], cur["symbol"]), set()).discard(ev.id)
        if opens:
            holders.setdefault(place, set()).add(ev.id)
        rows.append(_position_row(ev, version))

    changed = await repo.upsert_positions(conn, rows, "event")
    settled, discarded = await _settle(conn, list(changed))
    staged = Staged(changed=len(changed), duplicates=len(events) - len(changed) - len(refused), rejected=refused)
    # a close recorded earlier that this position's entry shows to be impossible: refused now
    staged.rejected += [
        StageRejection(newest[d["position_id"]][1], "exit_ts_ms", d["exit_ts_ms"], _before_entry(d),
                       event_type="position_close", raw=_close_text(d))
        for d in discarded
    ]
    await announce(conn, staged, [], set(changed.values()))
    return staged.merge(settled)


def _close_text(close: dict[str, Any]) -> str:
    return encode_event(PositionClose(id=close["position_id"], exit_price=close["exit_price"],
                                      exit_ts_ms=close["exit_ts_ms"], exit_oid=close["exit_oid"],
                                      commission=close["commission"])).decode()
