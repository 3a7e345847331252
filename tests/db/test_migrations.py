"""Migrations against a real server: up, down, up again; concurrency; the design's columns."""

from __future__ import annotations

import threading

import psycopg
import pytest

from nof0.db import migrate as m

# information_schema data_type of each design type (BIGSERIAL is a bigint, INT/INTEGER an integer)
TEXT, BIGINT, INT, DOUBLE = "text", "bigint", "integer", "double precision"
TSTZ, JSONB, UUID, BOOL = "timestamp with time zone", "jsonb", "uuid", "boolean"

# Our transcription of the design's section 2.2 (data-store.md, "Detailed Schemas"): every table and
# column it specifies, with the type it names. The tests never read the design document itself; when
# the design changes, this transcription changes with it.
DESIGN_TABLES: dict[str, dict[str, str]] = {
    "models": {"id": TEXT, "display_name": TEXT, "trader_config": JSONB, "created_at": TSTZ},
    "symbols": {"symbol": TEXT, "quote_currency": TEXT, "created_at": TSTZ},
    "price_ticks": {"id": BIGINT, "symbol": TEXT, "price": DOUBLE, "ts_ms": BIGINT, "source": TEXT,
        "ingested_at": TSTZ},
    "price_latest": {"symbol": TEXT, "price": DOUBLE, "ts_ms": BIGINT, "updated_at": TSTZ},
    "accounts": {"model_id": TEXT, "base_currency": TEXT, "created_at": TSTZ, "updated_at": TSTZ},
    "account_equity_snapshots": {"id": BIGINT, "model_id": TEXT, "ts_ms": BIGINT, "equity_usd": DOUBLE,
        "realized_pnl": DOUBLE, "unrealized_pnl": DOUBLE, "run_id": UUID, "created_at": TSTZ},
    "positions": {"id": TEXT, "model_id": TEXT, "symbol": TEXT, "side": TEXT, "entry_price": DOUBLE,
        "quantity": DOUBLE, "leverage": DOUBLE, "confidence": DOUBLE, "entry_ts_ms": BIGINT,
        "commission": DOUBLE, "status": TEXT, "exit_ts_ms": BIGINT, "exit_price": DOUBLE, "metadata": JSONB,
        "updated_at": TSTZ},
    "trader_state": {"trader_id": TEXT, "exchange_provider": TEXT, "market_provider": TEXT,
        "allocation_pct": DOUBLE, "cooldown": JSONB, "risk_guards": JSONB, "last_decision_at": TSTZ,
        "pause_until": TSTZ},
    "trades": {"id": TEXT, "model_id": TEXT, "symbol": TEXT, "side": TEXT, "trade_type": TEXT,
        "quantity": DOUBLE, "leverage": DOUBLE, "confidence": DOUBLE, "entry_price": DOUBLE,
        "entry_ts_ms": BIGINT, "exit_price": DOUBLE, "exit_ts_ms": BIGINT, "realized_gross_pnl": DOUBLE,
        "realized_net_pnl": DOUBLE, "total_commission_dollars": DOUBLE, "entry_oid": BIGINT, "exit_oid": BIGINT,
        "created_at": TSTZ},
    "model_analytics": {"model_id": TEXT, "updated_at": TSTZ, "payload": JSONB, "server_time_ms": BIGINT},
    "conversations": {"id": BIGINT, "model_id": TEXT, "created_at": TSTZ},
    "conversation_messages": {"id": BIGINT, "conversation_id": BIGINT, "role": TEXT, "content": TEXT,
        "ts_ms": BIGINT, "metadata": JSONB},
    "decision_cycles": {"id": BIGINT, "model_id": TEXT, "cycle_number": INT, "prompt_digest": TEXT,
        "cot_trace": TEXT, "decisions": JSONB, "success": BOOL, "error_message": TEXT, "executed_at": TSTZ},
    "market_assets": {"provider": TEXT, "symbol": TEXT, "name": TEXT, "sz_decimals": INT,
        "max_leverage": DOUBLE, "only_isolated": BOOL, "margin_table_id": INT, "is_delisted": BOOL,
        "updated_at": TSTZ},
    "market_asset_ctx": {"provider": TEXT, "symbol": TEXT, "funding": DOUBLE, "open_interest": DOUBLE,
        "oracle_px": DOUBLE, "mark_px": DOUBLE, "mid_px": DOUBLE, "impact_pxs": JSONB, "prev_day_px": DOUBLE,
        "day_ntl_vlm": DOUBLE, "day_base_vlm": DOUBLE, "updated_at": TSTZ},
}


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
    assert len(DESIGN_TABLES) == 15


def test_migrate_creates_every_design_table_and_column(empty_dsn):
    assert m.migrate(empty_dsn) == all_migrations()
    actual = _columns(empty_dsn)
    for table, cols in DESIGN_TABLES.items():
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
