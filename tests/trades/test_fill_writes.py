"""The ways a batch's fills reach Postgres (issue 13): a live feed's batch is copied straight into
``fills``, ``trades`` and ``account_equity_snapshots``; whenever one of its rows turns out to be stored
already (another writer after the probe, an equity snapshot event at a fill's millisecond, a trade id
taken), the batch takes the upsert and stores what it would have stored anyway; a replay stores nothing."""

from __future__ import annotations

from nof0.ingest.service import IngestService
from nof0.trades import repository as repo
from nof0.trades.rows import derived_id
from tests.ingest import factories as f
from tests.trades.db_helpers import ingest, rows
from tests.ingest.factories import T0

EQUITY = "SELECT ts_ms - %s, equity_usd, realized_pnl, unrealized_pnl FROM account_equity_snapshots" \
         " WHERE model_id = %s ORDER BY ts_ms"


async def test_a_fill_another_writer_stored_after_the_probe_is_kept_and_the_rest_stored_once(rt, monkeypatch):
    await ingest(rt, f.model("m1"), f.symbol("BTC"))
    fills = [f.fill("buy", 100, 1, tid) for tid in (1, 2, 3)]
    probe = repo._above_stored
    probed = []

    async def raced(conn, batch):
        probed.append(await probe(conn, batch))
        async with rt.pool.connection() as other:  # a writer that does not take the models' lock commits tid 2
            await other.execute("INSERT INTO fills (model_id, tid, symbol, side, price, size, ts_ms)"
                                " VALUES ('m1', 2, 'BTC', 'sell', 999, 5, %s)", (T0 + 2,))
        return probed[-1]

    monkeypatch.setattr(repo, "_above_stored", raced)
    async with rt.pool.connection() as conn, conn.transaction():
        new = await repo.insert_fills(conn, fills)
    assert probed == [True]  # the probe found the batch new: the straight COPY was tried and refused
    assert sorted(new) == [("m1", 1), ("m1", 3)]
    assert await rows(rt, "SELECT tid, side, price FROM fills ORDER BY tid") == [
        (1, "buy", 100.0), (2, "sell", 999.0), (3, "buy", 100.0)]


async def test_a_snapshot_event_at_a_later_fill_millisecond_gives_way_to_the_fills_value(rt):
    await ingest(rt, f.model("m1"), f.model("m2"), f.symbol("BTC"))
    await ingest(rt, f.fill("buy", 100, 1, 1), f.fill("buy", 100, 1, 1, model_id="m2"))
    await ingest(rt, f.snapshot("m1", dt=5, equity=1.0), f.snapshot("m1", dt=6, equity=2.0))
    for m in ("m1", "m2"):
        await ingest(rt, f.fill("sell", 110, 1, 3, model_id=m), f.fill("buy", 105, 2, 5, model_id=m),
                     f.fill("sell", 120, 1, 7, model_id=m))
    m1, m2 = await rows(rt, EQUITY, T0, "m1"), await rows(rt, EQUITY, T0, "m2")
    assert [r[0] for r in m1] == [1, 3, 5, 6, 7] and [r[0] for r in m2] == [1, 3, 5, 7]
    assert [r for r in m1 if r[0] != 6] == m2  # the fills' values, the event's only where no fill is
    assert m1[3][1] == 2.0


async def test_a_round_trip_whose_id_is_taken_keeps_the_stored_trade_and_the_batch_stores_the_rest(rt):
    await ingest(rt, f.model("m1"), f.symbol("BTC"), f.fill("buy", 100, 1, 1))
    taken = derived_id("m1", "BTC", 1, 2)  # the round trip the next fill closes
    await ingest(rt, f.trade(taken, model_id="m1"))
    await ingest(rt, f.fill("sell", 110, 1, 2), f.fill("buy", 105, 1, 3), f.fill("sell", 120, 1, 4))
    trades = await rows(rt, "SELECT id, origin, entry_tid, exit_tid FROM trades ORDER BY origin, id")
    assert trades == [(taken, "event", None, None), (derived_id("m1", "BTC", 3, 4), "fills", 3, 4)]
    assert await rows(rt, "SELECT count(*) FROM positions WHERE origin = 'fills'") == [(2,)]


async def test_a_replayed_batch_stores_nothing_new(rt, redis_sync):
    await ingest(rt, f.model("m1"), f.model("m2"), f.symbol("BTC"), f.symbol("ETH"))
    batch = [f.fill(side, 100 + i, 1, i, model_id=m, symbol=s)
             for i, (side, m, s) in enumerate([("buy", "m1", "BTC"), ("buy", "m2", "ETH"), ("sell", "m1", "BTC"),
                                               ("sell", "m2", "ETH"), ("sell", "m1", "BTC"), ("buy", "m1", "BTC")], 1)]
    await ingest(rt, *batch[:2])
    await ingest(rt, *batch)
    tables = ["fills", "trades", "positions", "account_equity_snapshots", "trade_outbox", "fill_books"]
    counts = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t}) AS {t}" for t in tables)
    before = await rows(rt, counts)
    stamps = await rows(rt, "SELECT model_id, updated_at FROM fill_books ORDER BY model_id")
    stream = redis_sync.xlen(rt.keys.trades_stream().name)
    report = await IngestService(rt).ingest(batch)
    assert (report.accepted, report.rejected) == (0, 0)
    assert await rows(rt, counts) == before and before[0][:2] == (6, 3)
    assert await rows(rt, "SELECT model_id, updated_at FROM fill_books ORDER BY model_id") == stamps
    assert redis_sync.xlen(rt.keys.trades_stream().name) == stream == 3
