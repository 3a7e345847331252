"""Engine processes sharing traders through leases (engine/leases.py) on real Redis, one server and a
cluster: disjoint fair shares, a dead holder's names taken over within the TTL, a joining process given
its share, and Postgres refusing the writes of a process whose lease was taken over (traders/fencing.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from nof0.engine.leases import LeaseTable, share_of
from nof0.ingest.service import IngestService
from tests.ingest import factories as f

NAMES = [f"trader-{i}" for i in range(7)]
DEADLINE_S = 60.0


def test_shares_are_fair_disjoint_and_cover_every_name():
    members = ["a", "b", "c"]
    shares = [share_of(m, members, NAMES) for m in members]
    assert set().union(*shares) == set(NAMES) and sum(len(s) for s in shares) == len(NAMES)
    assert sorted(len(s) for s in shares) == [2, 2, 3]
    assert share_of("x", members, NAMES) == set()


async def _converge(tables: list[LeaseTable], want: dict[str, int]) -> None:
    """Tick every table until each holds ``want[owner]`` names, all disjoint."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE_S
    while True:
        for t in tables:
            await t.tick()
        held = [set(t.held) for t in tables]
        if all(len(t.held) == want[t.owner] for t in tables) and len(set().union(*held)) == sum(map(len, held)):
            return
        if loop.time() > end:
            raise TimeoutError(f"leases did not converge: {[(t.owner, sorted(t.held)) for t in tables]}")
        await asyncio.sleep(0.05)


@pytest.fixture(params=["single", "cluster"])
def lease_rt(request):
    rt = request.getfixturevalue("rt" if request.param == "single" else "cluster_rt")
    rt.config.ttl.lease = 1.0  # a short TTL so a takeover happens within the test's deadline
    return rt


async def test_processes_share_take_over_and_rebalance(lease_rt):
    rt = lease_rt

    def wall() -> int:  # leases expire in Redis's real time: the processes' clock must be real too
        return int(time.time() * 1000)

    a, b = (LeaseTable(rt.redis, rt.keys, o, NAMES, now_ms=wall) for o in ("a", "b"))
    await _converge([a, b], {"a": len(share_of("a", "ab", NAMES)), "b": len(share_of("b", "ab", NAMES))})
    first = dict(a.held) | dict(b.held)
    assert set(first) == set(NAMES)

    # a dies (stops ticking): b takes everything once a's heartbeat and leases expire
    await _converge([b], {"b": len(NAMES)})
    assert all(b.held[n] > first[n] for n in a.held)  # new tokens for the names taken over

    # c joins: b hands c its share
    c = LeaseTable(rt.redis, rt.keys, "c", NAMES, now_ms=wall)
    await _converge([b, c], {"b": len(share_of("b", "bc", NAMES)), "c": len(share_of("c", "bc", NAMES))})
    await b.release_all()
    await c.release_all()


async def test_postgres_refuses_the_writes_of_a_process_that_lost_its_lease(rt):
    ingest = IngestService(rt)
    assert (await ingest.ingest([f.model("m1")])).ok
    old, new = 3, 4
    ok = await ingest.ingest([f.trader_state("m1", fencing_token=old), f.cycle("m1", 1, fencing_token=old)])
    assert ok.ok, ok.rejections
    taken = await ingest.ingest([f.cycle("m1", 2, fencing_token=new)])  # the new holder writes
    assert taken.ok, taken.rejections
    stale = await ingest.ingest([f.trader_state("m1", fencing_token=old), f.cycle("m1", 3, fencing_token=old)])
    reasons = [r.reason for r in stale.rejections]
    assert len(reasons) == 2 and all("stale fencing token 3" in r and "token 4" in r for r in reasons)
    async with rt.pool.connection() as conn:
        cycles = [r["cycle_number"] for r in await (await conn.execute(
            "SELECT cycle_number FROM decision_cycles WHERE model_id = 'm1' ORDER BY 1")).fetchall()]
    assert cycles == [1, 2]  # cycle 3 of the stale process never landed
    unfenced = await ingest.ingest([f.cycle("m1", 3)])  # imports and single-process engines are not fenced
    assert unfenced.ok
