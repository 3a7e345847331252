"""The changes stream (``cache.changes``): what writers announce, read back in order from any point."""

from __future__ import annotations

import dataclasses

from nof0.cache.changes import MALFORMED, Change, announce, latest_change_id, read_changes
from nof0.ingest.service import IngestService
from nof0.jobs.tasks import analytics_job, refresh_views_job
from nof0.runtime import open_redis
from tests.ingest.factories import fill, model, symbol, tick


async def _all(rt) -> list[Change]:
    return [c for _, c in await read_changes(rt.redis, rt.keys, "0-0", block_ms=0, count=10_000)]


async def test_announced_changes_read_back_in_order_with_resume_points(rt):
    assert rt.keys.changes_stream().name == f"{rt.keys.prefix}:changes"
    assert await latest_change_id(rt.redis, rt.keys) == "0-0"  # nothing announced yet
    first = Change("price_tick", symbols=("BTC", "ETH"), data={"BTC": 100.5, "ETH": 2.25})
    second = Change("fill", models=("m1",), symbols=("BTC",))
    await announce(rt, [first, second])
    entries = await read_changes(rt.redis, rt.keys, "0-0", block_ms=0, count=10)
    assert [c for _, c in entries] == [first, second]
    after_first = await read_changes(rt.redis, rt.keys, entries[0][0], block_ms=0, count=10)
    assert [c for _, c in after_first] == [second]
    assert await latest_change_id(rt.redis, rt.keys) == entries[1][0]
    assert await read_changes(rt.redis, rt.keys, "$", block_ms=0, count=10) == []  # '$': new ones only
    assert await read_changes(rt.redis, rt.keys, entries[1][0], block_ms=1, count=10) == []


async def test_the_stream_is_capped(rt):
    rt.config.root.ingest.changes_stream_maxlen = 10
    for _ in range(10):
        await announce(rt, [Change("trade", models=("m1",))] * 100)
    length = await rt.redis.xlen(rt.keys.changes_stream().name)
    assert length < 1000  # MAXLEN ~: trimmed by whole nodes, so near the cap rather than at it
    assert length <= 10 + 200


async def test_a_malformed_entry_is_read_as_such_and_passed(rt):
    stream = rt.keys.changes_stream().name
    await rt.redis.xadd(stream, {"models": "not json"})
    await announce(rt, [Change("trade")])
    assert await _all(rt) == [Change(MALFORMED), Change("trade")]


async def test_announcing_without_redis_is_logged_and_counted_never_raised(rt):
    dead = open_redis("redis://127.0.0.1:1/0", rt.config)
    try:
        dead_rt = dataclasses.replace(rt, redis=dead)
        await announce(dead_rt, [Change("trade")])
    finally:
        await dead.aclose()
    assert rt.metrics.registry.get_sample_value("nof0_redis_write_errors_total", {"pipeline": "changes"}) == 1


async def test_ingest_announces_each_changed_event_type_of_a_batch_with_what_it_touched(rt):
    service = IngestService(rt)
    await service.ingest([model("m1"), symbol("BTC"), symbol("ETH")])
    start = await latest_change_id(rt.redis, rt.keys)
    await service.ingest([tick("BTC", 100.0, 0), tick("BTC", 101.5, 2000), tick("BTC", 99.0, 1000),
                          tick("ETH", 3.0, 0), fill("buy", 100.0, 1.0, 1)])
    changes = {c.kind: c for _, c in await read_changes(rt.redis, rt.keys, start, block_ms=0, count=100)}
    assert changes["price_tick"] == Change("price_tick", (), ("BTC", "ETH"), {"BTC": 101.5, "ETH": 3.0})
    assert changes["fill"].models == ("m1",) and changes["fill"].symbols == ("BTC",)
    again = await latest_change_id(rt.redis, rt.keys)
    await service.ingest([tick("BTC", 100.0, 0)])  # a duplicate changes nothing: nothing announced
    assert await latest_change_id(rt.redis, rt.keys) == again


async def test_jobs_announce_what_they_republish(rt):
    await IngestService(rt).ingest([model("m1")])
    start = await latest_change_id(rt.redis, rt.keys)
    await refresh_views_job(rt)
    kinds = [c.kind for _, c in await read_changes(rt.redis, rt.keys, start, block_ms=0, count=100)]
    assert kinds == ["views", "leaderboard", "since_inception"]
    start = await latest_change_id(rt.redis, rt.keys)
    await analytics_job(rt)
    changes = [c for _, c in await read_changes(rt.redis, rt.keys, start, block_ms=0, count=100)]
    assert [c.kind for c in changes] == ["views", "leaderboard", "since_inception", "analytics"]
    assert changes[-1].models == ("m1",)
