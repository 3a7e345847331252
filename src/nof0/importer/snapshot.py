"""``nof0 import DIR``: a nof1 snapshot folder loaded through the ingestion pipelines (design 5,
migration plan: the files' facts become Postgres rows and Redis keys).

The folder's files become events (``docs/events.md`` gives the mapping): the models and symbols
they name are registered first, then prices, positions, trades, since-inception values, the
leaderboard and conversations, each file as its own ingest source (a rejection names the file and
the entry). Every field is kept: trades as given, times to the millisecond, inception dates to the
microsecond. ``analytics-*.json`` is derived data and is not imported. Importing twice changes
nothing: every event has a natural key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from nof0.cache.write import encode
from nof0.ingest.report import IngestReport
from nof0.ingest.service import IngestService
from nof0.jobs.views import refresh_views
from nof0.runtime import Runtime
from nof0.timefmt import s_to_ms
from nof0.trades.rows import derived_id

__all__ = ["import_snapshot", "snapshot_events", "SnapshotError", "SNAPSHOT_FILES"]

SNAPSHOT_FILES = (
    "crypto-prices.json", "positions.json", "trades.json", "since-inception-values.json", "leaderboard.json",
    "conversations.json",
)
PRICE_SOURCE = "nof1"  # price_ticks.source of imported prices
DEFAULT_CAPITAL = 10_000.0
# position fields computed at the mark when nof1 built the payload: not facts, not stored
_MARK_TO_MARKET = {"margin", "current_price", "unrealized_pnl"}
_POSITION_COLUMNS = {"symbol", "entry_price", "quantity", "leverage", "confidence", "entry_time", "commission",
                     "exit_plan", "entry_oid"}


class SnapshotError(ValueError):
    """A snapshot file that cannot be read, naming the file and the key."""

    def __init__(self, file: Path, key: str, message: str) -> None:
        super().__init__(f"{file}: {key + ': ' if key else ''}{message}")


def _load(path: Path, key: str) -> Any:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(path, "", f"cannot read JSON: {exc}") from None
    if not isinstance(doc, dict) or key not in doc:
        raise SnapshotError(path, key, "missing (not a nof1 snapshot of this endpoint?)")
    return doc


def _server_time(docs: dict[str, dict[str, Any]]) -> int | None:
    """The capture time: since-inception's serverTime, else the trades' or the prices' (ms)."""
    for name in ("since-inception-values.json", "trades.json", "crypto-prices.json", "positions.json"):
        t = docs.get(name, {}).get("serverTime")
        if isinstance(t, int) and not isinstance(t, bool):
            return t
    return None


def _objects(path: Path, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The file's list under ``key``; a non-object entry becomes {} (and is rejected, by line, at ingest)."""
    value = doc[key]
    if not isinstance(value, list):
        raise SnapshotError(path, key, f"expected a list, got {type(value).__name__}")
    return [v if isinstance(v, dict) else {} for v in value]


class _Names:
    """The models and symbols the files name, registered before any of their facts."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self.symbols: dict[str, None] = {}
        self.capitals: dict[str, float] = {}

    def model(self, model_id: Any, **facts: Any) -> None:
        if isinstance(model_id, str):
            self.models.setdefault(model_id, {"type": "model", "id": model_id}).update(facts)

    def symbol(self, name: Any) -> None:
        if isinstance(name, str):
            self.symbols.setdefault(name)

    def events(self) -> list[dict[str, Any]]:
        return list(self.models.values()) + [{"type": "symbol", "symbol": s} for s in self.symbols]


def _since_inception(rows: list[dict[str, Any]], names: _Names, at: int | None) -> list[dict[str, Any]]:
    equity = []
    for row in rows:
        m, date, nav = row.get("model_id"), row.get("inception_date"), row.get("nav_since_inception")
        names.model(m, starting_capital_usd=nav, inception_ts=date, inception_id=row.get("id"))
        if isinstance(m, str) and isinstance(nav, (int, float)):
            names.capitals[m] = nav
        # the account's first equity: its starting capital at inception
        equity.append({"type": "equity_snapshot", "model_id": m, "equity_usd": nav, "realized_pnl": 0.0,
                       "unrealized_pnl": 0.0, "ts_ms": s_to_ms(date) if isinstance(date, (int, float)) else date})
    return equity


def _prices(prices: Any, names: _Names, path: Path) -> list[dict[str, Any]]:
    if not isinstance(prices, dict):
        raise SnapshotError(path, "prices", f"expected an object, got {type(prices).__name__}")
    ticks = []
    for name, p in prices.items():
        names.symbol(name)
        p = p if isinstance(p, dict) else {}
        ticks.append({"type": "price_tick", "symbol": p.get("symbol", name), "price": p.get("price"),
                      "ts_ms": p.get("timestamp"), "source": PRICE_SOURCE})
    return ticks


def _positions(accounts: list[dict[str, Any]], names: _Names, at: int | None) -> list[dict[str, Any]]:
    events = []
    for account in accounts:
        names.model(account.get("model_id"))
        for name, p in (account.get("positions") or {}).items():
            names.symbol(name)
            events.append(_position_event(account.get("model_id"), name, p if isinstance(p, dict) else {}))
    return events


def _trades(trades: list[dict[str, Any]], names: _Names, at: int | None) -> list[dict[str, Any]]:
    for t in trades:
        names.model(t.get("model_id"))
        names.symbol(t.get("symbol"))
    return [{"type": "trade", **t} for t in trades]


def _leaderboard(rows: list[dict[str, Any]], names: _Names, at: int | None) -> list[dict[str, Any]]:
    # the leaderboard has no history: its equity becomes one snapshot at the capture's time; it does not
    # split realized from unrealized, so the whole return is booked as realized
    equity = []
    for row in rows:
        m, eq = row.get("id"), row.get("equity")
        names.model(m)
        capital = names.capitals.get(m, DEFAULT_CAPITAL) if isinstance(m, str) else DEFAULT_CAPITAL
        equity.append({"type": "equity_snapshot", "model_id": m, "ts_ms": at, "equity_usd": eq,
                       "realized_pnl": eq - capital if isinstance(eq, (int, float)) else None, "unrealized_pnl": 0.0})
    return equity


def _conversations(convos: list[dict[str, Any]], names: _Names, at: int | None) -> list[dict[str, Any]]:
    messages = []
    for convo in convos:
        names.model(convo.get("model_id"))
        for msg in convo.get("messages") or []:
            msg = msg if isinstance(msg, dict) else {}
            ts = msg.get("timestamp")
            messages.append({"type": "conversation_message", "model_id": convo.get("model_id"),
                             "role": msg.get("role"), "content": msg.get("content"),
                             "ts_ms": s_to_ms(ts) if isinstance(ts, (int, float)) else ts})
    return messages


# file -> (its top-level key, converter); since-inception comes first: the leaderboard needs its capitals
_CONVERTERS = {
    "since-inception-values.json": ("sinceInceptionValues", _since_inception),
    "crypto-prices.json": ("prices", None),
    "positions.json": ("accountTotals", _positions),
    "trades.json": ("trades", _trades),
    "leaderboard.json": ("leaderboard", _leaderboard),
    "conversations.json": ("conversations", _conversations),
}


def snapshot_events(directory: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    """(source name, events as JSON objects) per file, registrations first. Pure: reads files only."""
    docs = {name: _load(directory / name, key) for name, (key, _) in _CONVERTERS.items() if (directory / name).is_file()}
    if not docs:
        raise SnapshotError(directory, "", f"no nof1 snapshot file here (expected any of {', '.join(SNAPSHOT_FILES)})")
    at = _server_time(docs)
    if "leaderboard.json" in docs and at is None:
        raise SnapshotError(directory / "leaderboard.json", "", "has no time; import it with since-inception-values.json,"
                            " trades.json or crypto-prices.json (their serverTime dates the equity)")
    names = _Names()
    plan: dict[str, list[dict[str, Any]]] = {}
    for name, doc in docs.items():
        key, convert = _CONVERTERS[name]
        path = directory / name
        if convert is None:
            plan[name] = _prices(doc[key], names, path)
        else:
            plan[name] = convert(_objects(path, doc, key), names, at)
    return [("registrations", names.events())] + [(name, plan[name]) for name in SNAPSHOT_FILES if name in plan]


def _position_event(model_id: Any, name: str, p: dict[str, Any]) -> dict[str, Any]:
    qty = p.get("quantity")
    entry_time = p.get("entry_time")
    event = {
        "type": "position",
        "id": derived_id(model_id if isinstance(model_id, str) else "", "nof1-position", name, p.get("entry_oid"),
                         entry_time),
        "model_id": model_id,
        "symbol": p.get("symbol", name),
        "side": "short" if isinstance(qty, (int, float)) and qty < 0 else "long",
        "entry_price": p.get("entry_price"),
        "quantity": abs(qty) if isinstance(qty, (int, float)) else qty,
        "entry_ts_ms": s_to_ms(entry_time) if isinstance(entry_time, (int, float)) else entry_time,
        "leverage": p.get("leverage"),
        "confidence": p.get("confidence"),
        "commission": p.get("commission"),
        "exit_plan": p.get("exit_plan"),
        "entry_oid": p.get("entry_oid"),
        "metadata": {k: v for k, v in p.items() if k not in _POSITION_COLUMNS | _MARK_TO_MARKET},
    }
    return event


def _lines(events: Iterable[dict[str, Any]]) -> Iterable[bytes]:
    # null fields are left out: every optional event field defaults to null, and an absent model field
    # keeps what is stored (an import never erases a display name or trader config)
    for ev in events:
        yield encode({k: v for k, v in ev.items() if v is not None})


async def import_snapshot(rt: Runtime, directory: Path) -> IngestReport:
    """Import the snapshot files found in ``directory``; returns the combined ingest report."""
    plan = snapshot_events(Path(directory))
    service = IngestService(rt)
    report = IngestReport()
    for source, events in plan:
        report.merge(await service.ingest_lines(_lines(events), source=f"import:{Path(directory).name}/{source}"))
    if report.accepted:
        await refresh_views(rt)  # design 2.3: the views follow a bulk load (since-inception, leaderboard)
    return report
