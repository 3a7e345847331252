"""The trades stream and its idempotency guard are written together (review of issue 3, minor item a);
an announcement that failed is not lost: the outbox publishes it with the next one (issue 11)."""

from __future__ import annotations

from nof0.ingest.service import IngestService
from tests.ingest import factories as f


async def test_a_failed_announcement_leaves_no_guard_behind_and_is_published_later(rt, redis_sync):
    service = IngestService(rt)
    await service.ingest([f.model("m1"), f.symbol("BTC")])
    stream, first, second = rt.keys.trades_stream(), f.trade("m1_t1"), f.trade("m1_t2", dt=1)
    redis_sync.set(stream.name, "not a stream")  # every XADD now fails (WRONGTYPE)
    report = await service.ingest([first])
    assert report.accepted == 1  # the truth is stored; the announcement failed, logged and counted
    assert redis_sync.exists(rt.keys.ingest_trade("m1_t1").name) == 0  # so it is not silenced for 24 h
    redis_sync.delete(stream.name)
    await service.ingest([second])
    entries = [(i, e[b"id"]) for i, e in redis_sync.xrange(stream.name)]
    assert entries == [(b"1-0", b"m1_t1"), (b"2-0", b"m1_t2")]  # in commit order, ids from the outbox
    assert redis_sync.get(rt.keys.ingest_trade("m1_t1").name) == b"seen"
    assert redis_sync.get(rt.keys.ingest_trade("m1_t2").name) == b"seen"
    errors = {s.labels["pipeline"]: s.value for m in rt.metrics.registry.collect() for s in m.samples
              if s.name == "nof0_redis_write_errors_total"}
    assert errors["trades"] >= 1
