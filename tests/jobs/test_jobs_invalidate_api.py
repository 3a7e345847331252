"""A job that republishes derived data makes the API serve it at once, not after the response TTL: it
announces its output and the API's change listener drops the cached response."""

from __future__ import annotations

from nof0.jobs.tasks import refresh_views_job
from tests.api.conftest import clock_rt, listening_client  # noqa: F401 - fixture
from tests.api.seed import seed_equity, seed_models


async def test_refresh_job_drops_cached_leaderboard_response(clock_rt):
    rt = clock_rt
    await seed_models(rt, {"m1"})
    await seed_equity(rt, "m1", [(1_761_000_000_000, 10_000.0, 0.0, 0.0)])
    await refresh_views_job(rt)
    async with listening_client(rt) as (client, listener):
        first = (await client.get("/api/leaderboard")).json()["leaderboard"]
        assert [(e["id"], e["equity"]) for e in first] == [("m1", 10_000.0)]
        await seed_equity(rt, "m1", [(1_761_000_060_000, 12_500.0, 2_500.0, 0.0)])
        await refresh_views_job(rt)
        await listener.caught_up()  # the clock stands still: the bytes this process held are dropped too
        again = (await client.get("/api/leaderboard")).json()["leaderboard"]
    assert [(e["id"], e["equity"], e["return_pct"]) for e in again] == [("m1", 12_500.0, 25.0)]
