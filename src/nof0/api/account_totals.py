"""``/api/account-totals``: the hourly account series per model (nof1-api.md; definitions in docs/api.md).

One record per model per hour since the model's own inception (``accounts.inception_at``, else its
first equity snapshot): the last equity snapshot of that hour, with the positions open at that
moment marked at the last price tick at or before it. ``lastHourlyMarker=N`` keeps the records whose
hourly marker is greater than N; it is derived from the cached full series, not rebuilt per N.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.analytics.repository import begin_snapshot_read
from nof0.api import repository as repo
from nof0.timefmt import ms_to_s
from nof0.trades.payloads import position_json

__all__ = ["build_account_totals", "records_after_marker"]


def _record(row: dict[str, Any], positions: dict[str, Any]) -> dict[str, Any]:
    marker = row["hourly_marker"]
    return {
        "id": f"{row['model_id']}_{marker}",
        "model_id": row["model_id"],
        "timestamp": ms_to_s(row["ts_ms"]),
        "realized_pnl": row["realized_pnl"],
        "total_unrealized_pnl": row["unrealized_pnl"],
        "dollar_equity": row["equity_usd"],
        "sharpe_ratio": row["sharpe"],
        "cum_pnl_pct": (row["equity_usd"] / row["capital"] - 1) * 100,
        "since_inception_minute_marker": row["minute_marker"],
        "since_inception_hourly_marker": marker,
        "positions": positions,
    }


async def build_account_totals(conn: AsyncConnection, now_ms: int) -> dict[str, Any]:
    """Call inside a fresh transaction: both reads see one snapshot of the tables."""
    await begin_snapshot_read(conn)
    series = await repo.list_hourly_account_series(conn)
    held: dict[tuple[str, int], dict[str, Any]] = {}
    if series:
        rows = await repo.list_positions_at(conn, [r["model_id"] for r in series], [r["ts_ms"] for r in series])
        for p in rows:
            held.setdefault((p["at_model_id"], p["at_ms"]), {})[p["symbol"]] = position_json(p, p["mark_price"])
    records = [_record(r, held.get((r["model_id"], r["ts_ms"]), {})) for r in series]
    return {
        "accountTotals": records,
        "lastHourlyMarkerRead": max((r["hourly_marker"] for r in series), default=0),
        "serverTime": now_ms,
    }


def records_after_marker(body: dict[str, Any], marker: int) -> dict[str, Any]:
    """The body restricted to records with an hourly marker greater than ``marker``.

    ``lastHourlyMarkerRead`` is the highest marker the client has now read: the greatest marker in
    the answer, or ``marker`` itself when nothing is newer, so a client can poll with it next time.
    Works on snapshot files too: records without an integer marker are left out.
    """
    records = body.get("accountTotals")
    newer = [
        r for r in (records if isinstance(records, list) else [])
        if isinstance(r, dict) and _is_int(r.get("since_inception_hourly_marker"))
        and r["since_inception_hourly_marker"] > marker
    ]
    read = max([marker, *(r["since_inception_hourly_marker"] for r in newer)])
    out = {**body, "accountTotals": newer, "lastHourlyMarkerRead": read}
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
