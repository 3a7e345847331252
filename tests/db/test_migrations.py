"""Migrations against a real server: up, down, up again; concurrency; the design's columns."""

from __future__ import annotations

import re
import threading

import psycopg
import pytest

from nof0.db import migrate as m
from tests.conftest import SHARED

DESIGN = SHARED / "design" / "data-store.md"

# design type text -> information_schema data_type
_TYPES = {
    "TEXT": "text",
    "BIGSERIAL": "bigint",
    "BIGINT": "bigint",
    "INT": "integer",
    "INTEGER": "integer",
    "DOUBLE PRECISION": "double precision",
    "TIMESTAMPTZ": "timestamp with time zone",
    "JSONB": "jsonb",
    "UUID": "uuid",
    "BOOLEAN": "boolean",
}


def design_tables() -> dict[str, dict[str, str]]:
    """Table -> {column: data_type} parsed from the SQL blocks of design section 2.2."""
    text = DESIGN.read_text()
    section = text.split("### 2.2 Detailed Schemas", 1)[1].split("### 2.3", 1)[0]
    tables: dict[str, dict[str, str]] = {}
    for name, body in re.findall(r"#### `(\w+)`[^\n]*\n```sql\n(.*?)```", section, re.S):
        cols = {}
        for line in body.splitlines():
            line = line.strip().rstrip(",")
            if not line or line.upper().startswith("PRIMARY KEY"):
                continue
            col, rest = line.split(None, 1)
            dtype = next(t for t in sorted(_TYPES, key=len, reverse=True) if rest.upper().startswith(t))
            cols[col] = _TYPES[dtype]
        tables[name] = cols
    return tables


def _columns(dsn: str) -> dict[str, dict[str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema='public'"
        ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for t, c, d in rows:
        out.setdefault(t, {})[c] = d
    return out


def _relations(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace "
            "WHERE n.nspname='public' AND relkind IN ('r','m')").fetchall()}


def all_migrations() -> list[str]:
    """Every migration id in apply order (later issues add migrations; the tests follow them)."""
    return sorted(p.name[:-4] for p in m.migrations_dir().glob("*.sql") if not p.name.endswith(".rollback.sql"))


def test_design_lists_fifteen_tables():
    assert len(design_tables()) == 15


def test_migrate_creates_every_design_table_and_column(empty_dsn):
    assert m.migrate(empty_dsn) == all_migrations()
    actual = _columns(empty_dsn)
    for table, cols in design_tables().items():
        assert table in actual, f"table {table} missing"
        for col, dtype in cols.items():
            assert actual[table].get(col) == dtype, f"{table}.{col}: expected {dtype}, got {actual[table].get(col)}"
    with psycopg.connect(empty_dsn) as conn:
        conn.execute("SELECT refresh_views_nof0()")


def test_design_indexes_exist(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        idx = {r[0]: r[1] for r in conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='public'")}
    assert "(symbol, ts_ms DESC" in idx["idx_price_ticks_symbol_ts"]
    assert "(model_id, ts_ms DESC)" in idx["idx_equity_model_ts"]
    assert "WHERE (status = 'open'::text)" in idx["idx_positions_open"]
    assert "(model_id, entry_ts_ms DESC)" in idx["idx_trades_model_entry_ts"]
    assert "(exit_oid)" in idx["idx_trades_exit_oid"]
    assert "(conversation_id, ts_ms)" in idx["idx_conv_msgs_conv_ts"]
    assert "(model_id, executed_at DESC)" in idx["idx_decision_cycles_model_exec"]
    assert "UNIQUE" in idx["uq_equity_model_ts"]
    for view in ("v_crypto_prices_latest", "v_leaderboard", "v_since_inception"):
        assert any(d.startswith("CREATE UNIQUE INDEX") and f"public.{view} " in d for d in idx.values()), view


def test_up_down_up(empty_dsn):
    everything = all_migrations()
    later = everything[2:]
    m.migrate(empty_dsn)
    assert m.status(empty_dsn).current
    assert m.rollback(empty_dsn, len(later) + 1) == [*reversed(later), "002_refresh_helpers"]
    st = m.status(empty_dsn)
    assert st.applied == ["001_domain"] and st.pending == everything[1:]
    assert "v_leaderboard" not in _relations(empty_dsn)
    assert m.rollback(empty_dsn, 5) == ["001_domain"]
    assert not {"models", "trades", "price_ticks"} & _relations(empty_dsn)
    assert m.migrate(empty_dsn) == everything
    assert m.migrate(empty_dsn) == []  # a no-op when current
    assert {"models", "v_leaderboard"} <= _relations(empty_dsn)


def test_two_concurrent_migrates(empty_dsn):
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run():
        try:
            results.append(m.migrate(empty_dsn))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results, key=len) == [[], all_migrations()]
    assert m.status(empty_dsn).current


def test_rollback_rejects_zero_steps(pg_dsn):
    with pytest.raises(ValueError, match="at least 1"):
        m.rollback(pg_dsn, 0)
