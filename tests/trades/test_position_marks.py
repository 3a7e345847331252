"""The positions hashes follow the prices (design 3.2): a pass re-marks the hashes of the models holding a
symbol whose price moved, in one batch, with what a rebuild from Postgres writes; models without a move,
and models whose lock another writer holds, are left alone."""

from __future__ import annotations

import json

from nof0.cache.guards import redis_lock
from nof0.ingest.service import IngestService
from nof0.jobs.position_marks import PositionMarks
from nof0.trades.cache import publish_positions
from tests.ingest import factories as f
from tests.ops.arena import ingest_arena


async def _tick(rt, symbol: str, price: float, dt: int) -> None:
    report = await IngestService(rt).ingest([f.tick(symbol, price, dt)])
    assert report.ok, report.rejections


def _eth(redis_sync, rt, model_id: str) -> dict:
    return json.loads(redis_sync.hget(rt.keys.positions(model_id).name, "ETH"))


async def test_marks_follow_the_prices_of_held_symbols(rt, redis_sync):
    await ingest_arena(rt)  # m1 long 1 ETH, m2 long 2 ETH, entered at 49; ETH last at 50
    marks = PositionMarks(rt)
    assert await marks.run_once() == ["m1", "m2"]  # first pass: every holder
    assert await marks.run_once() == []  # nothing moved

    await _tick(rt, "ETH", 60.0, 10_000)
    assert await marks.run_once() == ["m1", "m2"]
    m2 = _eth(redis_sync, rt, "m2")
    assert (m2["current_price"], m2["unrealized_pnl"], m2["quantity"]) == (60.0, 22.0, 2.0)
    assert _eth(redis_sync, rt, "m1")["unrealized_pnl"] == 11.0

    before = {m: redis_sync.hgetall(rt.keys.positions(m).name) for m in ("m1", "m2")}
    async with rt.pool.connection() as conn:
        await publish_positions(rt, conn, ["m1", "m2"])  # what a rebuild from Postgres writes
    assert {m: redis_sync.hgetall(rt.keys.positions(m).name) for m in ("m1", "m2")} == before

    await _tick(rt, "BTC", 150.0, 11_000)  # nobody holds BTC
    assert await marks.run_once() == []


async def test_a_model_whose_lock_is_held_is_left_for_the_next_pass(rt, redis_sync):
    await ingest_arena(rt)
    marks = PositionMarks(rt)
    await marks.run_once()
    await _tick(rt, "ETH", 55.0, 10_000)
    async with redis_lock(rt.redis, rt.keys.positions_lock("m1")) as held:
        assert held
        assert await marks.run_once() == ["m2"]
    assert _eth(redis_sync, rt, "m1")["current_price"] == 50.0
    assert await marks.run_once() == ["m1"]
    assert _eth(redis_sync, rt, "m1")["current_price"] == 55.0


async def test_after_a_failed_pass_every_hash_is_written_again(rt, redis_sync):
    await ingest_arena(rt)
    marks = PositionMarks(rt)
    await marks.run_once()
    marks.on_failure(RuntimeError("redis away"))
    redis_sync.delete(rt.keys.positions("m1").name)
    assert await marks.run_once() == ["m1", "m2"]
    assert redis_sync.exists(rt.keys.positions("m1").name)
