"""``nof0 parity DIR`` (design 5 step 3): the file-backed and db-backed answer of each endpoint, compared.

For every endpoint whose file exists in DIR, the body the ``file`` source serves is compared with the
body the ``db`` source builds now (a fresh build, as on a cache miss, so a cached response can never
hide a difference). ``serverTime`` is ignored. Absent, ``null`` and empty say the same thing (no
value): a field absent on one side equals ``null`` on the other (the payload builders always write
optional fields such as a position's ``commission``), and a record absent on one side equals one
holding no facts on the other (a model listed with no open positions). Lists of records are matched by their identity
(``id``, else ``model_id``, else ``symbol``), not by position: order is presentation, not a fact.

Fact endpoints fail on any difference. Three kinds of differences are reported without failing:
derived endpoints (leaderboard, analytics, account-totals: computed from the facts by jobs), the
mark-to-market fields of positions (``current_price``, ``unrealized_pnl``, ``margin``), which
nof1-api.md defines as computed from the mark price when the payload is built, and records of models
the snapshot folder does not name in any of its files (models only in the database, such as the
traders of ``nof0 traders sync``): they are not a difference in the folder's records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import msgspec

from nof0.api.errors import ApiError
from nof0.api.sources import ALL_VARIANT
from nof0.api.sources.db import DbSource
from nof0.api.sources.file import FileSource
from nof0.api.spec import FACT_ENDPOINTS, SPECS, EndpointSpec
from nof0.runtime import Runtime

__all__ = ["Difference", "EndpointParity", "run_parity", "diff_bodies", "format_report"]

MARK_TO_MARKET = frozenset({"current_price", "unrealized_pnl", "margin"})
_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<absent>"})()
_IDENTITIES = ("id", "model_id", "symbol")


@dataclass(frozen=True)
class Difference:
    path: str
    file: Any
    db: Any
    derived: bool = False  # reported, never failing
    note: str = ""  # why a difference does not fail


@dataclass
class EndpointParity:
    endpoint: str
    variant: str
    fact: bool
    records: int = 0
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return self.endpoint if self.variant == ALL_VARIANT else f"{self.endpoint}/{self.variant}"

    @property
    def failing(self) -> bool:
        return self.fact and (self.error is not None or any(not d.derived for d in self.differences))


def _identity(a: list[Any], b: list[Any]) -> str | None:
    items = a + b
    if not items or not all(isinstance(x, dict) for x in items):
        return None
    for key in _IDENTITIES:
        if all(_is_identity(x.get(key)) for x in items) and _unique(a, key) and _unique(b, key):
            return key
    return None


def _is_identity(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _unique(items: list[dict[str, Any]], key: str) -> bool:
    return len({x[key] for x in items}) == len(items)


def _empty(value: Any) -> bool:
    """No facts: null, an empty container, or a mapping of only such values."""
    if value is None or value == [] or value == {}:
        return True
    return isinstance(value, dict) and all(_empty(v) for v in value.values())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


MARK_NOTE = "mark-to-market"
DB_ONLY_NOTE = "model only in the database"


def _db_only_model(record: dict[str, Any], models: frozenset[str] | None) -> bool:
    model = record.get("model_id")
    return models is not None and isinstance(model, str) and model not in models


def _walk(a: Any, b: Any, path: str, models: frozenset[str] | None = None) -> Iterator[Difference]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{k}" if path else str(k)
            if k not in b:
                if not _empty(a[k]):
                    yield Difference(sub, a[k], _MISSING)
            elif k not in a:
                if not _empty(b[k]):
                    yield Difference(sub, _MISSING, b[k])
            else:
                yield from _walk(a[k], b[k], sub, models)
    elif isinstance(a, list) and isinstance(b, list):
        key = _identity(a, b)
        if key is None:
            for i in range(max(len(a), len(b))):
                sub = f"{path}[{i}]"
                if i >= len(b):
                    yield Difference(sub, a[i], _MISSING)
                elif i >= len(a):
                    yield Difference(sub, _MISSING, b[i])
                else:
                    yield from _walk(a[i], b[i], sub, models)
            return
        by_b = {x[key]: x for x in b}
        seen = set()
        for x in a:
            sub = f"{path}[{key}={x[key]}]"
            seen.add(x[key])
            if x[key] in by_b:
                yield from _walk(x, by_b[x[key]], sub, models)
            elif not _empty({k: v for k, v in x.items() if k != key}):
                yield Difference(sub, x, _MISSING)
        for y in b:
            if y[key] not in seen and not _empty({k: v for k, v in y.items() if k != key}):
                only_db = _db_only_model(y, models)
                yield Difference(f"{path}[{key}={y[key]}]", _MISSING, y, only_db, DB_ONLY_NOTE if only_db else "")
    elif not _same(a, b):
        yield Difference(path, a, b)


def diff_bodies(
    endpoint: str, file_body: Any, db_body: Any, snapshot_models: frozenset[str] | None = None
) -> list[Difference]:
    """Every difference between two bodies of one endpoint, ``serverTime`` ignored.

    With ``snapshot_models`` (the models the snapshot folder names), a record only the database holds
    whose ``model_id`` is not one of them is reported as a model only in the database, not failing.
    """
    strip = (lambda body: {k: v for k, v in body.items() if k != "serverTime"} if isinstance(body, dict) else body)
    out = []
    for d in _walk(strip(file_body), strip(db_body), "", snapshot_models):
        last = d.path.rsplit(".", 1)[-1]
        derived = endpoint == "positions" and last in MARK_TO_MARKET
        out.append(Difference(d.path, d.file, d.db, True, MARK_NOTE) if derived else d)
    return out


def _model_ids(value: Any, into: set[str]) -> set[str]:
    """Every ``model_id`` string anywhere in a body."""
    if isinstance(value, dict):
        model = value.get("model_id")
        if isinstance(model, str):
            into.add(model)
        for v in value.values():
            _model_ids(v, into)
    elif isinstance(value, list):
        for v in value:
            _model_ids(v, into)
    return into


def _records(body: Any) -> int:
    if isinstance(body, dict):
        for v in body.values():
            if isinstance(v, (list, dict)) and not isinstance(v, str):
                return len(v)
    return 0


def _variants(directory: Path, spec: EndpointSpec) -> list[str]:
    if spec.name != "analytics":
        return [ALL_VARIANT] if (directory / spec.file_name).is_file() else []
    out = [ALL_VARIANT] if (directory / spec.file_name).is_file() else []
    return out + sorted(p.name[len("analytics-"):-len(".json")] for p in directory.glob("analytics-*.json"))


async def run_parity(rt: Runtime, directory: str | Path) -> list[EndpointParity]:
    directory = Path(directory)
    files = FileSource(directory, rt.clock, rt.config.ttl, gzip_min=rt.config.root.api.gzip_min_bytes)
    db = DbSource(rt)
    reports = []
    bodies: list[tuple[EndpointSpec, str, EndpointParity, Any]] = []
    for spec in SPECS.values():
        for variant in _variants(directory, spec):
            report = EndpointParity(spec.name, variant, spec.name in FACT_ENDPOINTS)
            reports.append(report)
            try:
                file_body = (await files.payload(spec, variant)).decoded()
            except ApiError as exc:
                report.error = f"file: {exc.detail}"
                continue
            report.records = _records(file_body)
            bodies.append((spec, variant, report, file_body))
    # the models the folder knows: a record of another model exists only in the database
    snapshot_models = frozenset(set().union(*(_model_ids(body, set()) for *_, body in bodies)))
    for spec, variant, report, file_body in bodies:
        try:
            # through JSON, as a client sees it (UUIDs become strings, tuples lists)
            db_body = msgspec.json.decode(msgspec.json.encode(await db.build(spec, variant)))
        except ApiError as exc:
            report.error = f"db: {exc.detail}"
            continue
        report.differences = diff_bodies(spec.name, file_body, db_body, snapshot_models)
    return reports


def _show(value: Any, width: int = 60) -> str:
    text = repr(value) if value is _MISSING else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_report(reports: list[EndpointParity], directory: str | Path, *, max_lines: int = 20) -> list[str]:
    lines = [f"parity: {directory} (file) against the database (db); serverTime ignored"]
    for r in reports:
        kind = "" if r.fact else " (derived: reported, not failing)"
        if r.error:
            lines.append(f"  {r.label:<28} ERROR {r.error}{kind}")
            continue
        if not r.differences:
            lines.append(f"  {r.label:<28} ok ({r.records} records)")
            continue
        status = "MISMATCH" if r.failing else "differs"
        lines.append(f"  {r.label:<28} {status}: {len(r.differences)} field(s) of {r.records} records{kind}")
        for d in r.differences[:max_lines]:
            note = f"  ({d.note or 'derived'}, not failing)" if d.derived else ""
            lines.append(f"      {d.path}: file {_show(d.file)} | db {_show(d.db)}{note}")
        if len(r.differences) > max_lines:
            lines.append(f"      ... and {len(r.differences) - max_lines} more")
    db_only = sorted({d.db["model_id"] for r in reports for d in r.differences
                      if d.note == DB_ONLY_NOTE and isinstance(d.db, dict)})
    if db_only:
        lines.append(f"models only in the database (not in {directory}), not failing: {', '.join(db_only)}")
    failing = [r.label for r in reports if r.failing]
    if not reports:
        lines.append("no endpoint file found: nothing compared")
    lines.append(f"result: FAILED ({', '.join(failing)})" if failing else "result: ok")
    return lines
