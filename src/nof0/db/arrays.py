"""Helpers for batched writes: rows become one array per column, sent to ``unnest(...)`` in one
statement (conventions: "batch hot writes, never one round trip per row").

Statements are composed from constant column specifications only; values always travel as bound
array parameters.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import msgspec
from psycopg.types.json import Jsonb

__all__ = ["jsonb", "column_arrays", "last_by_key", "unnest_params", "upsert_sql"]

_encode = msgspec.json.Encoder().encode


def _dumps(obj: Any) -> str:
    return _encode(obj).decode()


def jsonb(value: Any) -> Jsonb | None:
    """A JSONB parameter encoded with msgspec (NaN/Infinity become null, as in every JSON we emit)."""
    return None if value is None else Jsonb(value, dumps=_dumps)


def column_arrays(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], json_columns: Iterable[str] = ()) -> list[list[Any]]:
    """``rows`` transposed into one list per column (JSON columns wrapped for JSONB)."""
    as_json = set(json_columns)
    return [
        [jsonb(r[c]) for r in rows] if c in as_json else [r[c] for r in rows]
        for c in columns
    ]


def last_by_key(items: Iterable[Any], key: Any) -> list[Any]:
    """The last item for each key, in first-seen key order: one row per key for a single upsert
    statement (ON CONFLICT DO UPDATE cannot touch a row twice in one statement)."""
    out: dict[Any, Any] = {}
    for item in items:
        out[key(item)] = item
    return list(out.values())


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


_COERCE = {"float8": _float, "bigint": _int, "int": _int, "jsonb": jsonb}


def unnest_params(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str]) -> list[list[Any]]:
    """One typed array per column of ``columns`` (name -> Postgres type), in its order."""
    out = []
    for name, pg_type in columns.items():
        coerce = _COERCE.get(pg_type)
        out.append([coerce(r[name]) for r in rows] if coerce else [r[name] for r in rows])
    return out


def upsert_sql(
    table: str, columns: Mapping[str, str], key: str, *, guard: str = "", returning: str = "", stamp: str = "",
    source: str = "",
) -> str:
    """``INSERT ... SELECT unnest(...) ON CONFLICT (key) DO UPDATE`` that writes only rows that differ.

    ``guard`` adds a condition on the stored row (alias ``t``), e.g. ``t.origin = 'fills'``;
    ``stamp`` names a timestamp column set to now() when a row changes; ``source`` names a staging
    table with the columns in order (``nof0.db.staging``) to read instead of the arrays.
    """
    names = list(columns)
    keys = {k.strip() for k in key.split(",")}
    updated = [c for c in names if c not in keys]
    arrays = ", ".join(f"%b::{t}[]" for t in columns.values())
    where = (f"({', '.join('t.' + c for c in updated)}) IS DISTINCT FROM "
             f"({', '.join('EXCLUDED.' + c for c in updated)})")
    return (
        f"INSERT INTO {table} AS t ({', '.join(names)}) SELECT * FROM {source or f'unnest({arrays})'} "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in updated)}"
        f"{f', {stamp} = now()' if stamp else ''} "
        f"WHERE {where}{' AND ' + guard if guard else ''}"
        f"{' RETURNING ' + returning if returning else ''}"
    )
