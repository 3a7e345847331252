"""The scheduler under a controlled clock: timer cadences, coalesced requests after ingest batches,
failures recorded and survived, never two runs at once; and the real jobs through it."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest

from nof0.kernel.clock import FixedClock
from nof0.jobs.scheduler import Scheduler
from nof0.jobs.tasks import ANALYTICS, JOBS, REFRESH_VIEWS
from tests.analytics.seed import seed_arena

T0 = 1_760_000_000_000


class VirtualTime:
    """An injectable sleep: short waits pass at once on the fixed clock; a wait longer than
    ``block_over_s`` lasts until something else wakes the scheduler (a request or stop).
    ``stop_at_s`` sets ``stop`` when the clock reaches that point."""

    def __init__(self, clock: FixedClock, *, block_over_s: float = float("inf"), stop_at_s: float | None = None,
                 stop: asyncio.Event | None = None) -> None:
        self.clock, self.block_over_s, self.stop_at_s, self.stop = clock, block_over_s, stop_at_s, stop
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds > self.block_over_s:
            await asyncio.Event().wait()  # cancelled by the scheduler when it wakes
        self.clock.advance(int(seconds * 1000))
        if self.stop_at_s is not None and self.clock.now_ms() >= T0 + self.stop_at_s * 1000:
            self.stop.set()
        await asyncio.sleep(0)


class Recorder:
    """Fake jobs that log when they run, by the fixed clock, and how many ran at once."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.runs: list[tuple[str, float]] = []
        self.active = 0
        self.max_active = 0
        self.fail: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()  # set by every run

    def job(self, name: str):
        async def run(rt):
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            try:
                self.runs.append((name, (self.clock.now_ms() - T0) / 1000))
                self.started.set()
                if self.gate is not None:
                    await self.gate.wait()
                await asyncio.sleep(0)
                if name in self.fail:
                    raise RuntimeError(f"{name} exploded")
                return {"ran": name}
            finally:
                self.active -= 1
        return run

    def names(self) -> list[str]:
        return [n for n, _ in self.runs]


@pytest.fixture
def clock(rt) -> FixedClock:
    rt.clock = FixedClock(T0)
    return rt.clock


@pytest.fixture
def recorder(clock) -> Recorder:
    return Recorder(clock)


def make(rt, recorder, **kw) -> Scheduler:
    jobs = {REFRESH_VIEWS: recorder.job(REFRESH_VIEWS), ANALYTICS: recorder.job(ANALYTICS)}
    return Scheduler(rt, jobs=jobs, every_s={REFRESH_VIEWS: 10, ANALYTICS: 30}, debounce_s=1, **kw)


def job_runs(dsn: str) -> dict[str, dict]:
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
        return {r["job"]: r for r in conn.execute("SELECT * FROM job_runs")}


def metric(rt, name: str, **labels) -> float:
    return rt.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_timer_cadences(rt, clock, recorder):
    stop = asyncio.Event()
    s = make(rt, recorder, sleep=VirtualTime(clock, stop_at_s=100, stop=stop))
    await asyncio.wait_for(s.run(stop), 10)
    # analytics at start and every 30 s; it refreshes the views too, so the 10 s refresh timer restarts
    assert [t for n, t in recorder.runs if n == ANALYTICS] == [0, 30, 60, 90]
    assert [t for n, t in recorder.runs if n == REFRESH_VIEWS] == [10, 20, 40, 50, 70, 80]


async def test_a_burst_of_batches_gives_one_run(rt, clock, recorder, pg_dsn):
    s = make(rt, recorder)
    clock.advance(5_000)
    await s.run_due()
    assert recorder.names() == [ANALYTICS]  # the cold-start run
    for _ in range(50):
        await s.on_committed({"trade", "price_tick"})
    assert await s.run_due() == []  # not before the debounce
    clock.advance(1_000)
    outcomes = await s.run_due()
    assert [o.job for o in outcomes] == [ANALYTICS] and recorder.names() == [ANALYTICS, ANALYTICS]
    assert await s.run_due() == []
    assert metric(rt, "nof0_job_requests_total", job=ANALYTICS, outcome="queued") == 1
    assert metric(rt, "nof0_job_requests_total", job=ANALYTICS, outcome="coalesced") == 49
    assert job_runs(pg_dsn)[ANALYTICS]["runs"] == 2


async def test_requests_pick_the_jobs_their_events_feed(rt, clock, recorder):
    s = make(rt, recorder)
    await s.run_due()
    s.request_refresh({"price_tick", "market_meta", "trader_state"})  # feeds neither job
    s.request_refresh({"conversation_message"})  # analytics only
    clock.advance(1_000)
    await s.run_due()
    s.request_refresh({"equity_snapshot"})  # views and analytics: analytics covers both
    clock.advance(1_000)
    await s.run_due()
    assert recorder.names() == [ANALYTICS, ANALYTICS, ANALYTICS]
    s.jobs.pop(ANALYTICS)
    s.request_refresh(None)
    clock.advance(1_000)
    await s.run_due()
    assert recorder.names()[-1] == REFRESH_VIEWS


async def test_requests_are_ignored_when_disabled(rt, clock, recorder):
    rt.config.root.jobs.refresh_after_ingest = False
    s = make(rt, recorder)
    s.request_refresh({"trade"})
    assert s.due()[REFRESH_VIEWS] == T0 + 10_000


async def test_a_request_during_a_run_gives_exactly_one_more_run(rt, clock, recorder):
    s = make(rt, recorder)
    recorder.gate = asyncio.Event()
    first = asyncio.create_task(s.run_now(ANALYTICS))
    await asyncio.wait_for(recorder.started.wait(), 10)
    for _ in range(10):
        s.request_refresh({"trade"})  # facts committed after the running job read them
    recorder.gate.set()
    await first
    clock.advance(1_000)
    await s.run_due()
    await s.run_due()
    assert recorder.names() == [ANALYTICS, ANALYTICS]


async def test_never_two_runs_at_once(rt, clock, recorder):
    s = make(rt, recorder)
    recorder.gate = asyncio.Event()
    runs = [asyncio.create_task(s.run_now(name)) for name in (ANALYTICS, REFRESH_VIEWS, ANALYTICS)]
    await asyncio.wait_for(recorder.started.wait(), 10)
    for _ in range(20):
        await asyncio.sleep(0)
    assert recorder.active == 1 and len(recorder.runs) == 1  # the others wait for the lock
    recorder.gate.set()
    await asyncio.gather(*runs)
    assert recorder.max_active == 1 and len(recorder.runs) == 3


async def test_a_failing_run_is_recorded_and_the_scheduler_goes_on(rt, clock, recorder, pg_dsn):
    recorder.fail = {ANALYTICS}
    stop = asyncio.Event()
    s = make(rt, recorder, sleep=VirtualTime(clock, stop_at_s=65, stop=stop))
    await asyncio.wait_for(s.run(stop), 10)
    assert [t for n, t in recorder.runs if n == ANALYTICS] == [0, 30, 60]  # it kept its cadence
    row = job_runs(pg_dsn)[ANALYTICS]
    assert (row["last_status"], row["runs"], row["failures"]) == ("failed", 3, 3)
    assert row["last_error"] == "RuntimeError: analytics exploded"
    assert row["last_duration_ms"] >= 0 and row["last_finished_at"] >= row["last_started_at"]
    assert metric(rt, "nof0_job_failures_total", job=ANALYTICS) == 3
    assert metric(rt, "nof0_job_seconds_count", job=ANALYTICS) == 3

    recorder.fail = set()
    outcome = await s.run_now(ANALYTICS)
    assert outcome.ok and outcome.result == {"ran": ANALYTICS}
    row = job_runs(pg_dsn)[ANALYTICS]
    assert (row["last_status"], row["last_error"], row["runs"], row["failures"]) == ("ok", None, 4, 3)
    assert metric(rt, "nof0_job_last_success_timestamp", job=ANALYTICS) == clock.now_ms() / 1000
    assert job_runs(pg_dsn)[REFRESH_VIEWS]["failures"] == 0


async def test_a_request_wakes_the_sleeping_loop(rt, clock, recorder):
    stop = asyncio.Event()
    sleep = VirtualTime(clock, block_over_s=5)  # the 10 s and 30 s timers never fire in this test
    s = make(rt, recorder, sleep=sleep)
    loop = asyncio.create_task(s.run(stop))
    await asyncio.wait_for(recorder.started.wait(), 10)  # the cold-start run
    recorder.started.clear()
    await s.on_committed({"fill"})
    await asyncio.wait_for(recorder.started.wait(), 10)
    stop.set()
    await asyncio.wait_for(loop, 10)
    assert recorder.runs == [(ANALYTICS, 0), (ANALYTICS, 1)]  # one debounce after the request
    assert 1 in sleep.slept


async def test_running_context_starts_and_stops_the_loop(rt, clock, recorder, pg_dsn):
    s = make(rt, recorder, sleep=VirtualTime(clock, block_over_s=5))
    async with s.running():
        await asyncio.wait_for(recorder.started.wait(), 10)
    assert recorder.names() == [ANALYTICS] and recorder.active == 0


async def test_real_jobs_publish_the_caches(rt, clock, pg_dsn, redis_sync):
    arena = seed_arena(pg_dsn, n_models=3, trades_per_model=5)
    s = Scheduler(rt, jobs=JOBS)
    outcome = await s.run_now(ANALYTICS)
    assert outcome.ok, outcome.error
    assert sorted(outcome.result["analytics"]["computed"]) == sorted(arena.models)
    assert redis_sync.zcard(rt.keys.leaderboard().name) == len(arena.models)
    assert redis_sync.llen(rt.keys.since_inception("model-0").name) == len(arena.equity["model-0"])
    assert len(json.loads(redis_sync.get(rt.keys.analytics_all().name))["analytics"]) == len(arena.models)

    redis_sync.delete(rt.keys.leaderboard().name)
    outcome = await s.run_now(REFRESH_VIEWS)
    assert outcome.ok and outcome.result["leaderboard"]["models"] == len(arena.models)
    assert redis_sync.zcard(rt.keys.leaderboard().name) == len(arena.models)
    assert {j: (r["last_status"], r["runs"]) for j, r in job_runs(pg_dsn).items()} == {
        ANALYTICS: ("ok", 1), REFRESH_VIEWS: ("ok", 1)
    }


async def test_stopping_during_a_run_cancels_and_records_it(rt, clock, recorder, pg_dsn):
    recorder.gate = asyncio.Event()  # never set: the cold-start run hangs
    s = make(rt, recorder, sleep=VirtualTime(clock, block_over_s=5))
    async with s.running():
        await asyncio.wait_for(recorder.started.wait(), 10)
    row = job_runs(pg_dsn)[ANALYTICS]
    assert (row["last_status"], row["last_error"], row["runs"], row["failures"]) == ("failed", "cancelled", 1, 1)
    assert recorder.active == 0
