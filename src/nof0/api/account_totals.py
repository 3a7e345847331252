"""``/api/account-totals``: the hourly account series per model (nof1-api.md; definitions in docs/api.md).

One record per model per hour since the model's own inception (``accounts.inception_at``, else its
first equity snapshot): the last equity snapshot of that hour, with the positions open at that
moment marked at the last price tick at or before it. The record of the hour that is running now is
marked now instead (positions open now, the latest ticks, ``timestamp`` now), so a dashboard polling
``lastHourlyMarker=<current hour>`` keeps receiving fresh values while that hour lasts.

``total_unrealized_pnl`` is the sum of the record's positions' ``unrealized_pnl`` and
``dollar_equity`` includes it (the snapshot's equity with its own unrealized PnL replaced by that
sum), so a record always adds up. ``lastHourlyMarker=N`` keeps the records whose hourly marker is N
or greater; it is derived from the cached full series, not rebuilt per N.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.analytics.repository import begin_snapshot_read
from nof0.api import repository as repo
from nof0.timefmt import ms_to_s
from nof0.trades.payloads import position_json

__all__ = ["build_account_totals", "records_from_marker"]

_HOUR_MS = 3_600_000
_MINUTE_MS = 60_000


def _record(row: dict[str, Any], at_ms: int, positions: dict[str, Any]) -> dict[str, Any]:
    marker = row["hourly_marker"]
    unrealized = sum(p["unrealized_pnl"] for p in positions.values())
    equity = row["equity_usd"] - row["unrealized_pnl"] + unrealized
    return {
        "id": f"{row['model_id']}_{marker}",
        "model_id": row["model_id"],
        "timestamp": ms_to_s(at_ms),
        "realized_pnl": row["realized_pnl"],
        "total_unrealized_pnl": unrealized,
        "dollar_equity": equity,
        "sharpe_ratio": row["sharpe"],
        "cum_pnl_pct": (equity / row["capital"] - 1) * 100,
        "since_inception_minute_marker": (at_ms - row["inception_ms"]) // _MINUTE_MS,
        "since_inception_hourly_marker": marker,
        "positions": positions,
    }


def _marked_at(series: list[dict[str, Any]], now_ms: int) -> list[int]:
    """The time each record is marked at: its snapshot's, or now for a model's record of this hour."""
    at = [r["ts_ms"] for r in series]
    last = {r["model_id"]: i for i, r in enumerate(series)}  # the series is ordered by marker
    for i in last.values():
        r = series[i]
        if r["ts_ms"] <= now_ms and (now_ms - r["inception_ms"]) // _HOUR_MS == r["hourly_marker"]:
            at[i] = now_ms
    return at


async def build_account_totals(conn: AsyncConnection, now_ms: int) -> dict[str, Any]:
    """Call inside a fresh transaction: both reads see one snapshot of the tables."""
    await begin_snapshot_read(conn)
    series = await repo.list_hourly_account_series(conn)
    at = _marked_at(series, now_ms)
    held: dict[tuple[str, int], dict[str, Any]] = {}
    if series:
        rows = await repo.list_positions_at(conn, [r["model_id"] for r in series], at)
        for p in rows:
            held.setdefault((p["at_model_id"], p["at_ms"]), {})[p["symbol"]] = position_json(p, p["mark_price"])
    records = [_record(r, t, held.get((r["model_id"], t), {})) for r, t in zip(series, at)]
    return {
        "accountTotals": records,
        "lastHourlyMarkerRead": max((r["hourly_marker"] for r in series), default=0),
        "serverTime": now_ms,
    }


def records_from_marker(body: dict[str, Any], marker: int) -> dict[str, Any]:
    """The body restricted to records with an hourly marker of ``marker`` or greater.

    ``marker`` itself is included: a dashboard polls with the highest marker it holds, and the
    record of the running hour changes until the hour ends. ``lastHourlyMarkerRead`` is the highest
    marker the answer holds, or ``marker`` itself when it holds none, so a client can poll with it
    next time. Works on snapshot files too: records without an integer marker are left out.
    """
    records = body.get("accountTotals")
    kept = [
        r for r in (records if isinstance(records, list) else [])
        if isinstance(r, dict) and _is_int(r.get("since_inception_hourly_marker"))
        and r["since_inception_hourly_marker"] >= marker
    ]
    read = max([marker, *(r["since_inception_hourly_marker"] for r in kept)])
    return {**body, "accountTotals": kept, "lastHourlyMarkerRead": read}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
