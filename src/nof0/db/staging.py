"""Many rows into one statement by binary COPY into a session-local staging table, for the upserts of a
batch's trades, positions, fills and equity snapshots; or, for rows known to be new, by binary COPY
into the table itself (:func:`copy_new`).

The alternative, one array per column into ``unnest(...)`` (``nof0.db.arrays``), has psycopg's array
dumper handle every element in Python; a COPY row is formatted by psycopg in C. A staging table is
created on its first use in a session with ``ON COMMIT DELETE ROWS`` (its rows never outlive their
transaction) and emptied before each use, so one transaction can stage the same table twice.

Table and column names come from constant specifications only; values travel in the COPY stream.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable, Iterable, Mapping, Sequence

import psycopg
from psycopg import AsyncConnection

from nof0.db.arrays import jsonb

__all__ = ["stage_rows", "row_values", "copy_new", "copy_rows"]


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


# Values psycopg's binary dumper of the column's type would not take as they are (a float for a
# bigint; any JSON value, encoded by msgspec like every JSON we emit).
_COERCE: dict[str, Callable[[Any], Any]] = {"bigint": _int, "jsonb": jsonb}


def row_values(columns: Mapping[str, str]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """A function turning a row (a mapping with the columns' names) into its COPY values, in order."""
    get = itemgetter(*columns)
    fixes = [(i, _COERCE[t]) for i, t in enumerate(columns.values()) if t in _COERCE]
    if len(columns) == 1:
        return lambda row: [get(row)]
    if not fixes:
        return get

    def values(row: Mapping[str, Any]) -> Sequence[Any]:
        out = list(get(row))
        for i, coerce in fixes:
            out[i] = coerce(out[i])
        return out

    return values


async def stage_rows(conn: AsyncConnection, table: str, columns: Mapping[str, str],
                     rows: Iterable[Sequence[Any]]) -> None:
    """Replace the rows of the session's staging table ``table`` (``columns``: name -> Postgres type)
    with ``rows`` (each its values in the columns' order)."""
    spec = ", ".join(f"{name} {pg_type}" for name, pg_type in columns.items())
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({spec}) ON COMMIT DELETE ROWS; DELETE FROM {table}")
    await copy_rows(conn, table, columns, rows)


async def copy_new(conn: AsyncConnection, table: str, columns: Mapping[str, str], rows: Iterable[Sequence[Any]]) -> bool:
    """Binary COPY of ``rows`` into ``table`` itself, in a savepoint: the way to write rows the caller has
    shown to be new (no staging table, no conflict handling: the work of a raw COPY). False when one of
    them was not (a unique index refused it): then nothing was written and the caller takes its upsert."""
    try:
        async with conn.transaction():
            await copy_rows(conn, table, columns, rows)
    except psycopg.errors.UniqueViolation:
        return False
    return True


async def copy_rows(conn: AsyncConnection, table: str, columns: Mapping[str, str], rows: Iterable[Sequence[Any]]) -> None:
    """Binary COPY of ``rows`` (each its values in the columns' order) into ``table``."""
    async with conn.cursor() as cur:
        async with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(columns.values()))
            # psycopg's row formatter (C) called directly: one await per 32 kB buffer it fills, where
            # copy.write_row awaits once per row (a batch's tens of thousands of rows)
            write_row = copy.formatter.write_row
            for row in rows:
                if data := write_row(row):
                    await copy.write(data)
