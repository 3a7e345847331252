"""The trades stream's transactional outbox (issue 11): the stream is refilled after a Redis loss, each
trade once and in order; consumers resume from the id they saw; concurrent writers leave no gap."""

from __future__ import annotations

import asyncio
import json

from nof0.ingest.service import IngestService
from nof0.jobs.outbox_publisher import OutboxPublisher
from nof0.jobs.rebuild import rebuild_caches
from nof0.trades import outbox
from nof0.trades import outbox_repository as orepo
from tests.ingest import factories as f


async def _outbox(rt) -> list[tuple[bytes, dict[bytes, bytes]]]:
    async with rt.pool.connection() as conn, conn.transaction():
        rows = await orepo.list_entries(conn, 0, 1 << 62, 1 << 30)
    pairs = [(r["seq"], json.loads(r["fields"])) for r in rows]
    return [(outbox.stream_id(seq).encode(), {k.encode(): v.encode() for k, v in zip(fields[::2], fields[1::2])})
            for seq, fields in pairs]


async def _arena(rt, n: int = 5) -> IngestService:
    service = IngestService(rt)
    await service.ingest([f.model("m1"), f.model("m2"), f.symbol("BTC")])
    for i in range(1, n + 1):
        await service.ingest([f.trade(f"t{i}", model_id=f"m{i % 2 + 1}", dt=i)])
    await service.ingest([f.trade("t1", model_id="m2", dt=1, realized_net_pnl=7.5)])  # an update
    return service


def _sample(rt, name: str, **labels) -> float:
    return rt.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_entries_are_written_with_their_trades_and_published_under_outbox_ids(rt, redis_sync):
    service = await _arena(rt)
    stream = rt.keys.trades_stream().name
    entries = redis_sync.xrange(stream)
    assert entries == await _outbox(rt)
    assert [i for i, _ in entries] == [b"1-0", b"2-0", b"3-0", b"4-0", b"5-0", b"6-0"]
    assert [(e[b"op"], e[b"id"]) for _, e in entries][-1] == (b"update", b"t1")
    # a replayed trade is a no-op: no outbox entry, nothing published
    await service.ingest([f.trade("t2", model_id="m1", dt=2)])
    assert len(await _outbox(rt)) == 6 and redis_sync.xlen(stream) == 6
    assert _sample(rt, "nof0_outbox_published_total", stream="trades", outcome="added") == 6
    assert _sample(rt, "nof0_outbox_pending", stream="trades") == 0


async def test_a_lost_stream_is_refilled_each_trade_once_in_order(rt, redis_sync):
    await _arena(rt)
    before = redis_sync.xrange(rt.keys.trades_stream().name)
    for raw in redis_sync.scan_iter(match=f"{rt.keys.prefix}:*"):  # FLUSHALL of this namespace
        redis_sync.delete(raw)
    async with rt.pool.connection() as conn:
        done = await outbox.publish_pending(rt, conn)
    assert (done.added, done.duplicates) == (6, 0)
    assert redis_sync.xrange(rt.keys.trades_stream().name) == before
    # a replay leaves the idempotency guards to the cache rebuild (with the time they have left)
    assert redis_sync.exists(rt.keys.ingest_trade("t1").name) == 0
    async with rt.pool.connection() as conn:  # publishing again adds nothing
        assert (await outbox.publish_pending(rt, conn)).added == 0


async def test_the_cache_rebuild_replays_the_stream(rt, redis_sync):
    await _arena(rt)
    stream = rt.keys.trades_stream().name
    before = redis_sync.xrange(stream)
    redis_sync.delete(stream)
    report = await rebuild_caches(rt, "manual")
    assert report.status == "ok", report.failed
    assert redis_sync.xrange(stream) == before
    assert redis_sync.get(rt.keys.ingest_trade("t3").name) == b"seen"  # restored by the rebuild itself


async def test_only_the_last_maxlen_entries_come_back(rt, redis_sync):
    await _arena(rt)
    stream = rt.keys.trades_stream().name
    before = redis_sync.xrange(stream)
    redis_sync.delete(stream)
    rt.config.root.ingest.trades_stream_maxlen = 4
    async with rt.pool.connection() as conn:
        await outbox.publish_pending(rt, conn)
    assert redis_sync.xrange(stream) == before[-4:]


async def test_the_publisher_prunes_what_no_refill_reads(rt, redis_sync):
    """The outbox keeps the last maxlen published entries (all an emptied stream gets back) and everything
    not yet published; older entries go, so it does not grow with the trades."""
    await _arena(rt)  # 6 entries, all published
    stream = rt.keys.trades_stream().name
    before = redis_sync.xrange(stream)
    rt.config.root.ingest.trades_stream_maxlen = 4
    async with rt.pool.connection() as conn, conn.transaction():  # one more, committed but not published
        await orepo.insert_entries(conn, [("t9", "add", ["id", "t9", "op", "add"])])
    async with rt.pool.connection() as conn, conn.transaction():
        assert await orepo.prune_published(conn, 4, 100) == 2  # 1 and 2; 7 is not published yet
    assert [i for i, _ in await _outbox(rt)] == [b"3-0", b"4-0", b"5-0", b"6-0", b"7-0"]
    assert (await OutboxPublisher(rt).run_once()).pruned == 1  # its pass publishes 7, then 3 goes
    assert [i for i, _ in await _outbox(rt)] == [b"4-0", b"5-0", b"6-0", b"7-0"]
    redis_sync.delete(stream)
    async with rt.pool.connection() as conn:
        await outbox.publish_pending(rt, conn)
    assert redis_sync.xrange(stream)[:3] == before[3:] and redis_sync.xlen(stream) == 4
    async with rt.pool.connection() as conn, conn.transaction():
        assert await orepo.prune_published(conn, 4, 100) == 0


async def test_a_consumer_resumes_from_the_last_id_it_saw(rt, redis_sync):
    service = await _arena(rt, n=3)
    stream = rt.keys.trades_stream().name
    seen = redis_sync.xread({stream: "0"})[0][1]  # a consumer reads everything so far...
    last = seen[-1][0]
    await service.ingest([f.trade("t8", model_id="m1", dt=8), f.trade("t9", model_id="m2", dt=9)])
    redis_sync.delete(stream)  # ...Redis loses the stream, the outbox refills it...
    async with rt.pool.connection() as conn:
        await outbox.publish_pending(rt, conn)
    later = redis_sync.xread({stream: last})[0][1]  # ...and the consumer resumes from its id
    assert [e[b"id"] for _, e in later] == [b"t8", b"t9"]
    assert seen + later == redis_sync.xrange(stream)  # exactly the later entries: no gap, no repeat


async def test_a_writer_in_flight_holds_back_later_seqs(rt, redis_sync):
    """Seq 1 drawn by A, seq 2 by B, B commits first: 2 is not published before 1."""
    stream = rt.keys.trades_stream().name
    row = {"id": "x", "model_id": "m1", "symbol": "BTC", "side": "long", "realized_net_pnl": 1.0, "exit_ts_ms": 2000}
    async with rt.pool.connection() as a, rt.pool.connection() as b, rt.pool.connection() as publisher:
        async with a.transaction():
            await outbox.write_entries(a, [("add", {**row, "id": "a"})])
            async with b.transaction():
                await outbox.write_entries(b, [("add", {**row, "id": "b"})])
            assert (await outbox.publish_pending(rt, publisher)).busy  # A is between its seq and its commit
            assert redis_sync.xlen(stream) == 0
        done = await outbox.publish_pending(rt, publisher)
    assert (done.busy, done.added) == (False, 2)
    assert [(i, e[b"id"]) for i, e in redis_sync.xrange(stream)] == [(b"1-0", b"a"), (b"2-0", b"b")]


async def test_concurrent_writers_leave_no_gap_and_keep_seq_order(rt, redis_sync):
    service = IngestService(rt)
    models = [f"m{i}" for i in range(8)]
    await service.ingest([*(f.model(m) for m in models), f.symbol("BTC")])

    async def writer(m: str) -> None:
        own = IngestService(rt)
        for n in range(6):
            await own.ingest([f.trade(f"{m}_t{n}", model_id=m, dt=n)])

    await asyncio.gather(*(writer(m) for m in models))
    async with rt.pool.connection() as conn:  # whatever a busy publisher left, as the background loop would
        await outbox.publish_pending(rt, conn)
    entries = redis_sync.xrange(rt.keys.trades_stream().name)
    assert entries == await _outbox(rt) and len(entries) == 48
    assert sorted(e[b"id"] for _, e in entries) == sorted(f"{m}_t{n}".encode() for m in models for n in range(6))


async def test_a_stream_with_foreign_ids_is_replaced(rt, redis_sync):
    """A stream written before migration 011 (XADD *: ids are milliseconds) would refuse every outbox id."""
    stream = rt.keys.trades_stream().name
    redis_sync.xadd(stream, {"op": "add", "id": "old"})
    await _arena(rt, n=2)
    assert redis_sync.xrange(stream) == await _outbox(rt)


async def test_the_background_publisher_retries_after_an_outage(rt, redis_sync, monkeypatch):
    stream = rt.keys.trades_stream().name
    redis_sync.set(stream, "not a stream")  # every publication fails until the key is gone
    await _arena(rt, n=2)
    assert redis_sync.type(stream) == b"string"
    real, turns, stop = outbox.publish_pending, [], asyncio.Event()

    async def turn(rt_, conn):
        turns.append(1)
        if len(turns) == 2:
            redis_sync.delete(stream)  # Redis is back
        try:
            return await real(rt_, conn)
        finally:
            if len(turns) == 2:
                stop.set()

    monkeypatch.setattr(outbox, "publish_pending", turn)
    await OutboxPublisher(rt, every_s=0).run(stop)
    assert len(turns) == 2 and redis_sync.xrange(stream) == await _outbox(rt)


async def test_a_refill_larger_than_one_script_call_keeps_the_order(rt, redis_sync, monkeypatch):
    await _arena(rt)
    stream = rt.keys.trades_stream().name
    before = redis_sync.xrange(stream)
    redis_sync.delete(stream)
    monkeypatch.setattr(outbox, "_BATCH", 4)  # 6 entries: one full call, then the rest
    async with rt.pool.connection() as conn:
        assert (await outbox.publish_pending(rt, conn)).added == 6
    assert redis_sync.xrange(stream) == before
