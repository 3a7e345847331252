"""``nof0 import DIR``: a nof1 snapshot folder loaded through the ingestion pipelines (design 5,
migration plan: the files' facts become Postgres rows and Redis keys).

The folder's files become events (``docs/events.md`` gives the mapping): the models and symbols
they name are registered first, then prices, positions, trades, since-inception values, the
leaderboard and conversations, each file as its own ingest source. Every field is kept: trades as
given, times to the millisecond, inception dates to the microsecond. ``analytics-*.json`` is derived
data and is not imported. Importing twice changes nothing: every event has a natural key.

A file that is not a nof1 capture (not JSON, no top-level key, a top-level value of the wrong kind)
stops the import (:class:`SnapshotError`, naming the file and the key). A malformed entry inside a file
(an entry that is not an object, a positions value that is a list, NaN, Infinity or 1e400 where a
number belongs) is rejected on its own, named by its file and JSON path (``positions.json
accountTotals[3].positions``); the entries around it are imported. The caller refreshes the views and
caches afterwards (``nof0.ingest.followup``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import msgspec

from nof0.kernel.decode import Rejection
from nof0.kernel.report import IngestReport
from nof0.ingest.service import IngestService
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

Entry = tuple[str, dict[str, Any]] | Rejection  # (where, event as a JSON object) or a malformed entry


class SnapshotError(ValueError):
    """A snapshot file that cannot be read, naming the file and the key."""

    def __init__(self, file: Path, key: str, message: str) -> None:
        super().__init__(f"{file}: {key + ': ' if key else ''}{message}")


class NonFinite(str):
    """A number JSON cannot hold, as the file wrote it (``NaN``, ``Infinity``, ``1e400``)."""


def _float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


_ENCODE = msgspec.json.Encoder(enc_hook=lambda obj: str.__str__(obj) if isinstance(obj, NonFinite) else obj).encode


def _load(path: Path, key: str) -> Any:
    try:
        # NaN, Infinity and 1e400 are kept as the text the file has, so the entry holding one is rejected
        doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=NonFinite, parse_float=_float)
    except (OSError, ValueError, RecursionError) as exc:
        raise SnapshotError(path, "", f"cannot read JSON: {exc}") from None
    if not isinstance(doc, dict) or key not in doc:
        raise SnapshotError(path, key, "missing (not a nof1 snapshot of this endpoint?)")
    return doc


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _ms(ts_s: Any) -> Any:
    """Seconds -> milliseconds when it is a number of seconds that can be; anything else as it is (the
    event then names the field)."""
    return s_to_ms(ts_s) if _number(ts_s) and abs(ts_s) < 1e13 else ts_s


def _server_time(docs: dict[str, dict[str, Any]]) -> int | None:
    """The capture time: since-inception's serverTime, else the trades' or the prices' (ms)."""
    for name in ("since-inception-values.json", "trades.json", "crypto-prices.json", "positions.json"):
        t = docs.get(name, {}).get("serverTime")
        if isinstance(t, int) and not isinstance(t, bool):
            return t
    return None


def _rejection(where: str, event_type: str | None, field: str | None, value: Any, reason: str) -> Rejection:
    # numbered when its file's entries are (``_entries``)
    return Rejection(None, event_type, field, value, reason, _ENCODE(value).decode(), where=where)


def _not_object(where: str, event_type: str, value: Any, what: str = "an object") -> Rejection:
    return _rejection(where, event_type, None, value, f"expected {what}, got {type(value).__name__}")


def _each_object(path: Path, doc: dict[str, Any], key: str, event_type: str,
                 convert: Callable[[str, dict[str, Any]], Iterable[Entry]]) -> list[Entry]:
    """``convert(where, row)`` for each object of the file's list under ``key``; an entry that is not an
    object is rejected where it is (``trades.json trades[12]``)."""
    value = doc[key]
    if not isinstance(value, list):
        raise SnapshotError(path, key, f"expected a list, got {type(value).__name__}")
    out: list[Entry] = []
    for i, row in enumerate(value):
        where = f"{path.name} {key}[{i}]"
        if isinstance(row, dict):
            out.extend(convert(where, row))
        else:
            out.append(_not_object(where, event_type, row))
    return out


class _Names:
    """The models and symbols the files name, registered before any of their facts (each named by the
    first place it appears)."""

    def __init__(self) -> None:
        self.models: dict[str, tuple[str, dict[str, Any]]] = {}
        self.symbols: dict[str, str] = {}
        self.capitals: dict[str, float] = {}

    def model(self, model_id: Any, where: str, **facts: Any) -> None:
        if isinstance(model_id, str):
            self.models.setdefault(model_id, (where, {"type": "model", "id": model_id}))[1].update(facts)

    def symbol(self, name: Any, where: str) -> None:
        if isinstance(name, str):
            self.symbols.setdefault(name, where)

    def events(self) -> list[Entry]:
        return list(self.models.values()) + [(w, {"type": "symbol", "symbol": s}) for s, w in self.symbols.items()]


def _since_inception(path: Path, doc: dict[str, Any], key: str, names: _Names, at: int | None) -> list[Entry]:
    def convert(where: str, row: dict[str, Any]) -> list[Entry]:
        m, date, nav = row.get("model_id"), row.get("inception_date"), row.get("nav_since_inception")
        names.model(m, f"{where}.model_id", starting_capital_usd=nav, inception_ts=date, inception_id=row.get("id"))
        if isinstance(m, str) and _number(nav):
            names.capitals[m] = nav
        # the account's first equity: its starting capital at inception
        return [(where, {"type": "equity_snapshot", "model_id": m, "equity_usd": nav, "realized_pnl": 0.0,
                         "unrealized_pnl": 0.0, "ts_ms": _ms(date)})]

    return _each_object(path, doc, key, "model", convert)


def _prices(path: Path, doc: dict[str, Any], key: str, names: _Names, at: int | None) -> list[Entry]:
    prices = doc[key]
    if not isinstance(prices, dict):
        raise SnapshotError(path, key, f"expected an object, got {type(prices).__name__}")
    ticks: list[Entry] = []
    for symbol, p in prices.items():
        where = f"{path.name} {key}.{symbol}"
        names.symbol(symbol, where)
        if not isinstance(p, dict):
            ticks.append(_not_object(where, "price_tick", p))
            continue
        ticks.append((where, {"type": "price_tick", "symbol": p.get("symbol", symbol), "price": p.get("price"),
                              "ts_ms": p.get("timestamp"), "source": PRICE_SOURCE}))
    return ticks


def _positions(path: Path, doc: dict[str, Any], key: str, names: _Names, at: int | None) -> list[Entry]:
    def convert(where: str, account: dict[str, Any]) -> list[Entry]:
        model_id = account.get("model_id")
        names.model(model_id, f"{where}.model_id")
        positions = account.get("positions") or {}
        if not isinstance(positions, dict):
            return [_not_object(f"{where}.positions", "position", positions, "an object (symbol -> position)")]
        events: list[Entry] = []
        for symbol, p in positions.items():
            at_symbol = f"{where}.positions.{symbol}"
            names.symbol(symbol, at_symbol)
            events.append((at_symbol, _position_event(model_id, symbol, p)) if isinstance(p, dict)
                          else _not_object(at_symbol, "position", p))
        return events

    return _each_object(path, doc, key, "position", convert)


def _trades(path: Path, doc: dict[str, Any], key: str, names: _Names, at: int | None) -> list[Entry]:
    def convert(where: str, t: dict[str, Any]) -> list[Entry]:
        names.model(t.get("model_id"), f"{where}.model_id")
        names.symbol(t.get("symbol"), f"{where}.symbol")
        return [(where, {**t, "type": "trade"})]  # the event type is ours, whatever the row holds

    return _each_object(path, doc, key, "trade", convert)


def _leaderboard(path: Path, doc: dict[str, Any], key: str, names: _Names, at: int | None) -> list[Entry]:
    # the leaderboard has no history: its equity becomes one snapshot at the capture's time; it does not
    # split realized from unrealized, so the whole return is booked as realized
    def convert(where: str, row: dict[str, Any]) -> list[Entry]:
        m, eq = row.get("id"), row.get("equity")
        names.model(m, f"{where}.id")
        capital = names.capitals.get(m, DEFAULT_CAPITAL) if isinstance(m, str) else DEFAULT_CAPITAL
        return [(where, {"type": "equity_snapshot", "model_id": m, "ts_ms": at, "equity_usd": eq,
                         "realized_pnl": eq - capital if _number(eq) else None, "unrealized_pnl": 0.0})]

    return _each_object(path, doc, key, "equity_snapshot", convert)


def _conversations(path: Path, doc: dict[str, Any], key: str, names: _Names, at: int | None) -> list[Entry]:
    def convert(where: str, convo: dict[str, Any]) -> list[Entry]:
        names.model(convo.get("model_id"), f"{where}.model_id")
        thread = convo.get("messages") or []
        if not isinstance(thread, list):
            return [_not_object(f"{where}.messages", "conversation_message", thread, "a list")]
        messages: list[Entry] = []
        for j, msg in enumerate(thread):
            at_msg = f"{where}.messages[{j}]"
            messages.append((at_msg, {"type": "conversation_message", "model_id": convo.get("model_id"),
                                      "role": msg.get("role"), "content": msg.get("content"),
                                      "ts_ms": _ms(msg.get("timestamp"))}) if isinstance(msg, dict)
                            else _not_object(at_msg, "conversation_message", msg))
        return messages

    return _each_object(path, doc, key, "conversation_message", convert)


# file -> (its top-level key, converter); since-inception comes first: the leaderboard needs its capitals
_CONVERTERS = {
    "since-inception-values.json": ("sinceInceptionValues", _since_inception),
    "crypto-prices.json": ("prices", _prices),
    "positions.json": ("accountTotals", _positions),
    "trades.json": ("trades", _trades),
    "leaderboard.json": ("leaderboard", _leaderboard),
    "conversations.json": ("conversations", _conversations),
}


def snapshot_events(directory: Path) -> list[tuple[str, list[Entry]]]:
    """(source name, entries) per file, registrations first: each entry is ``(where, event as a JSON
    object)`` or the :class:`Rejection` of a malformed entry. Pure: reads files only."""
    docs = {name: _load(directory / name, key) for name, (key, _) in _CONVERTERS.items() if (directory / name).is_file()}
    if not docs:
        raise SnapshotError(directory, "", f"no nof1 snapshot file here (expected any of {', '.join(SNAPSHOT_FILES)})")
    at = _server_time(docs)
    if "leaderboard.json" in docs and at is None:
        raise SnapshotError(directory / "leaderboard.json", "", "has no time; import it with since-inception-values.json,"
                            " trades.json or crypto-prices.json (their serverTime dates the equity)")
    names = _Names()
    plan: dict[str, list[Entry]] = {}
    for name, doc in docs.items():
        key, convert = _CONVERTERS[name]
        plan[name] = convert(directory / name, doc, key, names, at)
    return [("registrations", names.events())] + [(name, plan[name]) for name in SNAPSHOT_FILES if name in plan]


def _position_event(model_id: Any, name: str, p: dict[str, Any]) -> dict[str, Any]:
    qty = p.get("quantity")
    entry_time = p.get("entry_time")
    return {
        "type": "position",
        "id": derived_id(model_id if isinstance(model_id, str) else "", "nof1-position", name, p.get("entry_oid"),
                         entry_time),
        "model_id": model_id,
        "symbol": p.get("symbol", name),
        "side": "short" if _number(qty) and qty < 0 else "long",
        "entry_price": p.get("entry_price"),
        "quantity": abs(qty) if _number(qty) else qty,
        "entry_ts_ms": _ms(entry_time),
        "leverage": p.get("leverage"),
        "confidence": p.get("confidence"),
        "commission": p.get("commission"),
        "exit_plan": p.get("exit_plan"),
        "entry_oid": p.get("entry_oid"),
        "metadata": {k: v for k, v in p.items() if k not in _POSITION_COLUMNS | _MARK_TO_MARKET},
    }


def _non_finite(event: dict[str, Any]) -> tuple[str, NonFinite] | None:
    """The first field (path) of ``event`` holding a non-finite number, if any."""
    stack: list[tuple[str, Any]] = [(k, v) for k, v in reversed(event.items())]
    while stack:
        path, node = stack.pop()
        if isinstance(node, NonFinite):
            return path, node
        if isinstance(node, dict):
            stack.extend((f"{path}.{k}", v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(node))))
    return None


def _entries(entries: Iterable[Entry]) -> Iterator[tuple[str, bytes] | Rejection]:
    # null fields are left out: every optional event field defaults to null, and an absent model field
    # keeps what is stored (an import never erases a display name or trader config)
    for n, entry in enumerate(entries, 1):
        if isinstance(entry, Rejection):
            yield dataclasses.replace(entry, line=n)  # numbered like the other entries of its file
            continue
        where, event = entry
        if bad := _non_finite(event):
            field, text = bad
            yield Rejection(n, event.get("type"), field, str.__str__(text),
                            "must be a finite number (JSON has no NaN or Infinity)", _ENCODE(event).decode(), where=where)
            continue
        yield where, _ENCODE({k: v for k, v in event.items() if v is not None})


async def import_snapshot(rt: Runtime, directory: Path) -> IngestReport:
    """Import the snapshot files found in ``directory``; returns the combined ingest report (the views and
    caches are the caller's to refresh: ``nof0.ingest.followup.refresh_after_ingest``)."""
    plan = snapshot_events(Path(directory))
    service = IngestService(rt)
    report = IngestReport()
    for source, entries in plan:
        report.merge(await service.ingest_located(_entries(entries), source=f"import:{Path(directory).name}/{source}"))
    return report
