"""Every table's constraints reject bad rows (and accept a good one)."""

from __future__ import annotations

import psycopg
import pytest

GOOD = [
    "INSERT INTO models (id, display_name) VALUES ('gpt-5', 'GPT 5')",
    "INSERT INTO symbols (symbol) VALUES ('BTC')",
    "INSERT INTO price_ticks (symbol, price, ts_ms) VALUES ('BTC', 1.5, 1)",
    "INSERT INTO price_latest (symbol, price, ts_ms) VALUES ('BTC', 1.5, 1)",
    "INSERT INTO accounts (model_id) VALUES ('gpt-5')",
    "INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('gpt-5', 1, 100)",
    "INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms) VALUES ('p','m','BTC','long',1,1,1)",
    "INSERT INTO trades (id, model_id, symbol, side) VALUES ('t','m','BTC','short')",
    "INSERT INTO fills (model_id, tid, symbol, side, price, size, ts_ms) VALUES ('m',1,'BTC','buy',1,1,1)",
    "INSERT INTO trader_state (trader_id, exchange_provider, market_provider) VALUES ('t','sim','hyperliquid')",
    "INSERT INTO trader_fencing (trader_id, token) VALUES ('t', 1)",
    "INSERT INTO model_analytics (model_id, updated_at, payload, server_time_ms) VALUES ('m', now(), '{}', 1)",
    "INSERT INTO conversations (model_id) VALUES ('m')",
    "INSERT INTO conversation_messages (conversation_id, role, content, ts_ms) VALUES (1, 'user', 'hi', 1)",
    "INSERT INTO decision_cycles (model_id, cycle_number) VALUES ('m', 1)",
    "INSERT INTO llm_calls (trader_id, cycle_number, attempt, model, ts_ms, outcome) VALUES ('m', 1, 1, 'gpt-5', 1, 'ok')",
    "INSERT INTO market_assets (provider, symbol, sz_decimals, max_leverage) VALUES ('hl', 'BTC', 5, 40)",
    "INSERT INTO market_asset_ctx (provider, symbol, funding) VALUES ('hl', 'BTC', 0.0001)",
    "INSERT INTO sim_orders (trader_id, oid, symbol, side, size, status, ts_ms) VALUES ('t', 1, 'BTC', 'buy', 1, 'open', 1)",
    "INSERT INTO sim_balances (trader_id, asset, total, available, ts_ms) VALUES ('t', 'USD', 1, 1, 1)",
    "INSERT INTO ingest_dead_letters (source, reason, raw) VALUES ('stdin', 'bad', '{}')",
    "INSERT INTO job_runs (job) VALUES ('analytics')",
    "INSERT INTO fill_books (model_id, last_ts_ms, last_tid, state) VALUES ('m', 1, 1, '{}')",
    "INSERT INTO position_closes (position_id, exit_price, exit_ts_ms) VALUES ('p', 2, 2)",
    "INSERT INTO trade_outbox (trade_id, op, fields) VALUES ('t', 'add', '[\"op\", \"add\"]')",
]

BAD = {
    "model id with space": "INSERT INTO models (id, display_name) VALUES ('gpt 5', 'x')",
    "model without name": "INSERT INTO models (id) VALUES ('m2')",
    "model config not object": "INSERT INTO models (id, display_name, trader_config) VALUES ('m3','x','[]')",
    "symbol with star": "INSERT INTO symbols (symbol) VALUES ('BT*')",
    "tick zero price": "INSERT INTO price_ticks (symbol, price, ts_ms) VALUES ('BTC', 0, 2)",
    "tick NaN price": "INSERT INTO price_ticks (symbol, price, ts_ms) VALUES ('BTC', 'NaN', 2)",
    "tick infinite price": "INSERT INTO price_ticks (symbol, price, ts_ms) VALUES ('BTC', 'Infinity', 2)",
    "tick duplicate natural key": "INSERT INTO price_ticks (symbol, price, ts_ms) VALUES ('BTC', 2, 1)",
    "tick without symbol": "INSERT INTO price_ticks (price, ts_ms) VALUES (1, 2)",
    "latest negative ts": "INSERT INTO price_latest (symbol, price, ts_ms) VALUES ('ETH', 1, -1)",
    "account zero capital": "INSERT INTO accounts (model_id, starting_capital_usd) VALUES ('m9', 0)",
    "duplicate snapshot": "INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('gpt-5', 1, 5)",
    "snapshot NaN equity": "INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('m', 9, 'NaN')",
    "position bad side": "INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms) VALUES ('p2','m','BTC','up',1,1,1)",
    "position negative qty": "INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms) VALUES ('p2','m','BTC','long',1,-1,1)",
    "position bad status": "INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms, status) VALUES ('p2','m','BTC','long',1,1,1,'gone')",
    "closed position without exit": "INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms, status) VALUES ('p2','m','BTC','long',1,1,1,'closed')",
    "position confidence > 1": "INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms, confidence) VALUES ('p2','m','BTC','long',1,1,1,2)",
    "trade bad side": "INSERT INTO trades (id, model_id, symbol, side) VALUES ('t2','m','BTC','buy')",
    "trade exit before entry": "INSERT INTO trades (id, model_id, symbol, side, entry_ts_ms, exit_ts_ms) VALUES ('t2','m','BTC','long',5,4)",
    "duplicate trade id": "INSERT INTO trades (id, model_id, symbol, side) VALUES ('t','m','BTC','long')",
    "fill bad side": "INSERT INTO fills (model_id, tid, symbol, side, price, size, ts_ms) VALUES ('m',2,'BTC','long',1,1,1)",
    "fill zero size": "INSERT INTO fills (model_id, tid, symbol, side, price, size, ts_ms) VALUES ('m',2,'BTC','buy',1,0,1)",
    "duplicate fill": "INSERT INTO fills (model_id, tid, symbol, side, price, size, ts_ms) VALUES ('m',1,'BTC','buy',1,1,1)",
    "trader allocation > 100": "INSERT INTO trader_state (trader_id, exchange_provider, market_provider, allocation_pct) VALUES ('t2','sim','hl',101)",
    "trader without provider": "INSERT INTO trader_state (trader_id, market_provider) VALUES ('t2','hl')",
    "negative fencing token": "INSERT INTO trader_fencing (trader_id, token) VALUES ('t2', -1)",
    "analytics payload array": "INSERT INTO model_analytics (model_id, updated_at, payload, server_time_ms) VALUES ('m2', now(), '[]', 1)",
    "analytics without time": "INSERT INTO model_analytics (model_id, payload, server_time_ms) VALUES ('m2', '{}', 1)",
    "second main thread": "INSERT INTO conversations (model_id) VALUES ('m')",
    "message bad role": "INSERT INTO conversation_messages (conversation_id, role, content) VALUES (1, 'tool', 'x')",
    "duplicate message": "INSERT INTO conversation_messages (conversation_id, role, content, ts_ms) VALUES (1, 'user', 'hi', 1)",
    "duplicate cycle": "INSERT INTO decision_cycles (model_id, cycle_number) VALUES ('m', 1)",
    "duplicate llm call": "INSERT INTO llm_calls (trader_id, cycle_number, attempt, model, ts_ms, outcome) VALUES ('m', 1, 1, 'x', 2, 'ok')",
    "llm call bad outcome": "INSERT INTO llm_calls (trader_id, cycle_number, attempt, model, ts_ms, outcome) VALUES ('m', 2, 1, 'x', 2, 'meh')",
    "llm call negative cost": "INSERT INTO llm_calls (trader_id, cycle_number, attempt, model, ts_ms, outcome, cost_usd) VALUES ('m', 2, 1, 'x', 2, 'ok', -1)",
    "asset negative decimals": "INSERT INTO market_assets (provider, symbol, sz_decimals) VALUES ('hl', 'ETH', -1)",
    "asset duplicate": "INSERT INTO market_assets (provider, symbol) VALUES ('hl', 'BTC')",
    "ctx duplicate": "INSERT INTO market_asset_ctx (provider, symbol) VALUES ('hl', 'BTC')",
    "sim order bad status": "INSERT INTO sim_orders (trader_id, oid, symbol, side, size, status, ts_ms) VALUES ('t', 2, 'BTC', 'buy', 1, 'lost', 1)",
    "sim order zero size": "INSERT INTO sim_orders (trader_id, oid, symbol, side, size, status, ts_ms) VALUES ('t', 2, 'BTC', 'buy', 0, 'open', 1)",
    "sim balance without total": "INSERT INTO sim_balances (trader_id, asset, available, ts_ms) VALUES ('t', 'BTC', 1, 1)",
    "dead letter duplicate raw": "INSERT INTO ingest_dead_letters (source, reason, raw) VALUES ('x', 'y', '{}')",
    "dead letter without reason": "INSERT INTO ingest_dead_letters (source, raw) VALUES ('x', 'z')",
    "outbox bad op": "INSERT INTO trade_outbox (trade_id, op, fields) VALUES ('t', 'upsert', '[]')",
    "outbox fields not a list": "INSERT INTO trade_outbox (trade_id, op, fields) VALUES ('t', 'add', '{}')",
    "outbox negative watermark": "INSERT INTO trade_outbox_published (stream, seq) VALUES ('x', -1)",
    "job bad status": "INSERT INTO job_runs (job, last_status) VALUES ('j', 'maybe')",
    "trade bad origin": "INSERT INTO trades (id, model_id, symbol, side, origin) VALUES ('t3','m','BTC','long','guess')",
    "position bad origin": "INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms, origin) VALUES ('p3','m','BTC','long',1,1,1,'guess')",
    "fill book state array": "INSERT INTO fill_books (model_id, last_ts_ms, last_tid, state) VALUES ('m2', 1, 1, '[]')",
    "duplicate fill book": "INSERT INTO fill_books (model_id, last_ts_ms, last_tid, state) VALUES ('m', 1, 1, '{}')",
    "close zero price": "INSERT INTO position_closes (position_id, exit_price, exit_ts_ms) VALUES ('p2', 0, 2)",
    "duplicate close": "INSERT INTO position_closes (position_id, exit_price, exit_ts_ms) VALUES ('p', 3, 3)",
}


@pytest.fixture
def seeded(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for sql in GOOD:
            conn.execute(sql)
    return pg_dsn


def test_every_table_has_a_good_row(seeded):
    with psycopg.connect(seeded) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
            " AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname NOT LIKE '%yoyo%'")]  # partitions: their parent
        for t in tables:
            assert conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 1, t


@pytest.mark.parametrize("sql", BAD.values(), ids=BAD.keys())
def test_bad_row_rejected(seeded, sql):
    with psycopg.connect(seeded, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.IntegrityError):
            conn.execute(sql)
