"""Fill books kept consistent with what they depend on: the account's starting capital, and a book lost
with a rollback of migration 003 (review of issue 3, findings 3 and 9)."""

from __future__ import annotations

import psycopg

from nof0.db import migrate as m
from nof0.ingest.service import IngestService
from nof0.runtime import Servers, open_runtime
from tests.ingest import factories as f
from tests.trades.db_helpers import ingest, rows
from tests.ingest.factories import T0

EQUITY = "SELECT ts_ms - %s AS dt, equity_usd FROM account_equity_snapshots WHERE model_id = %s ORDER BY ts_ms"


def _fills(model_id: str) -> list:
    return [f.fill("buy", 100, 1, 1, model_id=model_id), f.fill("sell", 110, 1, 2, model_id=model_id),
            f.fill("buy", 105, 1, 3, model_id=model_id)]


async def test_a_new_starting_capital_gives_the_equity_history_of_a_fresh_ingest(rt):
    await ingest(rt, f.model("m1", starting_capital_usd=10_000.0), f.symbol("BTC"))
    buy, sell, buy_again = _fills("m1")
    await ingest(rt, buy)
    await ingest(rt, sell)
    report = await ingest(rt, f.model("m1", starting_capital_usd=20_000.0))
    assert report.accepted == 1
    await ingest(rt, buy_again)
    assert await rows(rt, EQUITY, T0, "m1") == [(1, 20_000.0), (2, 20_010.0), (3, 20_010.0)]
    # the same final state ingested fresh, in one go, capital first
    await ingest(rt, f.model("m2", starting_capital_usd=20_000.0), *_fills("m2"))
    assert await rows(rt, EQUITY, T0, "m1") == await rows(rt, EQUITY, T0, "m2")
    # a capital change in the same batch as fills, and back
    await ingest(rt, f.model("m1", starting_capital_usd=5_000.0), f.fill("sell", 115, 1, 4, model_id="m1"))
    await ingest(rt, f.model("m2", starting_capital_usd=5_000.0))
    await ingest(rt, f.fill("sell", 115, 1, 4, model_id="m2"))
    assert await rows(rt, EQUITY, T0, "m1") == await rows(rt, EQUITY, T0, "m2") == [
        (1, 5_000.0), (2, 5_010.0), (3, 5_010.0), (4, 5_020.0)]
    (state,) = await rows(rt, "SELECT state->'capital' FROM fill_books WHERE model_id = 'm1'")
    assert state == (5_000.0,)


async def test_a_model_event_without_a_capital_change_leaves_the_books_alone(rt):
    await ingest(rt, f.model("m1", starting_capital_usd=10_000.0), f.symbol("BTC"), *_fills("m1"))
    (before,) = await rows(rt, "SELECT updated_at FROM fill_books")
    report = await ingest(rt, f.model("m1", display_name="Renamed"))
    assert report.accepted == 1
    assert await rows(rt, "SELECT updated_at FROM fill_books") == [before]


async def test_rolling_back_003_and_migrating_again_keeps_the_fill_ledger(config, pg_dsn):
    servers = Servers(config.root.postgres.dsn, config.root.redis.url)
    async with open_runtime(config, servers) as rt:
        await ingest(rt, f.model("m1"), f.model("m2"), f.symbol("BTC"), f.fill("buy", 100, 1, 1, model_id="m1"),
                     f.position("p1", model_id="m2", dt=0), f.close("p1", exit_price=120.0, dt=500))
    # roll back every migration down to (and with) 003, then migrate again
    applied = m.status(pg_dsn).applied
    assert m.rollback(pg_dsn, len(applied) - applied.index("003_ingest"))[-1] == "003_ingest"
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM fills").fetchone() == (1,)  # 001's ledger survived
    m.migrate(pg_dsn)
    async with open_runtime(config, servers) as rt:
        # 006 gave the rows derived before the rollback their origin back
        assert await rows(rt, "SELECT model_id, status, origin FROM positions ORDER BY model_id") == [
            ("m1", "open", "fills"), ("m2", "closed", "event")]
        await ingest(rt, f.fill("sell", 110, 1, 2, model_id="m1"))
        # the sell closes the long the buy opened (instead of opening a short beside it)
        trades = await rows(rt, "SELECT entry_tid, exit_tid, quantity, realized_gross_pnl, origin FROM trades"
                                " WHERE model_id = 'm1'")
        assert trades == [(1, 2, 1.0, 10.0, "fills")]
        assert await rows(rt, "SELECT id FROM positions WHERE status = 'open'") == []
        assert await rows(rt, EQUITY, T0, "m1") == [(1, 10_000.0), (2, 10_010.0)]
        # the position close's facts are back: a newer state of p1 is closed again, not reopened
        assert await rows(rt, "SELECT origin FROM trades WHERE model_id = 'm2'") == [("position",)]
        await ingest(rt, f.position("p1", model_id="m2", dt=0, quantity=3.0, updated_ts_ms=T0 + 100))
        assert await rows(rt, "SELECT status, quantity FROM positions WHERE id = 'p1'") == [("closed", 3.0)]
        assert await rows(rt, "SELECT quantity FROM trades WHERE model_id = 'm2'") == [(3.0,)]
