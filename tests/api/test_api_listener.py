"""Every API process hears every writer: a write in one runtime drops the responses an API app of
another runtime cached (the changes stream, ``api.listener``), in Redis and in its near cache."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import httpx
import msgspec

from nof0.api.app import create_app
from nof0.api.invalidate import invalidate_api_payloads
from nof0.api.read_path import LOCAL_FRESH_MS, ReadPath
from nof0.cache.changes import Change, announce
from nof0.ingest.service import IngestService
from nof0.kernel.clock import FixedClock
from nof0.runtime import Servers, open_runtime
from tests.api.conftest import NOW_MS, listening_client
from tests.ingest.factories import symbol, tick


def _builds(rt) -> float:
    return sum(s.value for m in rt.metrics.cache_fill_seconds.collect() for s in m.samples if s.name.endswith("_count"))


async def _price(client, sym: str = "BTC") -> float:
    return (await client.get("/api/crypto-prices")).json()["prices"][sym]["price"]


async def test_a_write_in_one_runtime_reaches_the_api_of_another(rt, config):
    writer = IngestService(rt)
    await writer.ingest([symbol("BTC"), tick("BTC", 100.0, 0)])
    servers = Servers(config.root.postgres.dsn, config.root.redis.url)
    async with open_runtime(config, servers) as other:
        # the clock of the API stands still: without the listener it would serve the bytes it holds
        api_rt = dataclasses.replace(other, clock=FixedClock(NOW_MS))
        async with listening_client(api_rt) as (client, listener):
            assert await _price(client) == 100.0
            await writer.ingest([tick("BTC", 101.5, 1000)])
            await listener.caught_up()  # applied: the held bytes were rebuilt before it counted as caught up
            assert await _price(client) == 101.5
            cached = await rt.redis.exists(rt.keys.api_payload("crypto-prices", "all", "short").name)
            assert cached == 1  # rebuilt and cached again by that request


async def test_changes_that_feed_no_endpoint_drop_nothing(clock_rt):
    rt = clock_rt
    await IngestService(rt).ingest([symbol("BTC"), tick("BTC", 100.0, 0)])
    key = rt.keys.api_payload("crypto-prices", "all", "short").name
    async with listening_client(rt) as (client, listener):
        assert await _price(client) == 100.0
        built = _builds(rt)
        await announce(rt, [Change("market_meta", symbols=("BTC",)), Change("trader_state", models=("m1",))])
        await listener.caught_up()
        assert await rt.redis.exists(key) == 1 and _builds(rt) == built
        await announce(rt, [Change("price_tick", symbols=("BTC",), data={"BTC": 100.0})])
        await listener.caught_up()
        assert _builds(rt) == built + 1  # dropped, and rebuilt at once since this process serves it


async def test_the_listener_hears_only_what_is_announced_after_it_starts(clock_rt):
    rt = clock_rt
    await IngestService(rt).ingest([symbol("BTC"), tick("BTC", 100.0, 0)])
    async with listening_client(rt) as (client, listener):
        assert await _price(client) == 100.0
        await listener.caught_up()
        started_at = listener.last_id
    async with listening_client(rt) as (client, listener):  # a restart does not replay old changes
        await listener.caught_up()
        assert listener.last_id == started_at
        assert await rt.redis.exists(rt.keys.api_payload("crypto-prices", "all", "short").name) == 1


async def test_readers_get_the_held_bytes_while_a_change_is_rebuilt(clock_rt):
    """Stale while revalidate: after a change the held bytes are served at once, inside their window,
    while one rebuild runs; its bytes are served once it is done; past the window requests wait for it."""
    rt = clock_rt
    read_path = ReadPath(rt)
    version, gate, building = [1], asyncio.Event(), asyncio.Event()
    builds = 0

    async def build() -> dict:
        nonlocal builds
        builds += 1
        building.set()
        await gate.wait()
        return {"version": version[0]}

    def served() -> int:
        held = read_path.peek("leaderboard", "all", "medium", build)
        return msgspec.json.decode(held.body)["version"] if held is not None else None

    gate.set()
    assert msgspec.json.decode((await read_path.get("leaderboard", "all", "medium", build)).body) == {"version": 1}
    gate.clear()
    version[0] = 2
    await invalidate_api_payloads(rt, ["leaderboard"])
    read_path.mark_stale(["leaderboard"])
    rt.clock.advance(LOCAL_FRESH_MS // 2)
    building.clear()
    assert [served() for _ in range(3)] == [1, 1, 1]
    await building.wait()  # the rebuild the first reader started
    assert [served() for _ in range(3)] == [1, 1, 1] and builds == 2  # one rebuild for every reader
    gate.set()
    await read_path.revalidated()
    assert served() == 2

    gate.clear()
    version[0] = 3
    await invalidate_api_payloads(rt, ["leaderboard"])
    read_path.mark_stale(["leaderboard"])
    rt.clock.advance(LOCAL_FRESH_MS)  # past the held bytes' window: never served again
    assert served() is None
    waiting = asyncio.ensure_future(read_path.get("leaderboard", "all", "medium", build))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()
    gate.set()
    assert msgspec.json.decode((await waiting).body) == {"version": 3}


async def test_readers_are_never_served_bytes_older_than_the_bound(clock_rt):
    """Random interleavings of writes, clock steps, finished rebuilds and reads: every answer is the
    current price or one that stopped being current less than ``LOCAL_FRESH_MS`` ago. The listener's
    steps are taken by hand (drop from Redis, mark stale), without its eager rebuild, so reads do land
    between a change and its rebuild."""
    rt = clock_rt
    rng = random.Random(13)
    writer = IngestService(rt)
    await writer.ingest([symbol("BTC"), tick("BTC", 100.0, 0)])
    current, superseded_at = 100.0, {}  # price -> clock time it stopped being current
    served_stale = 0
    app = create_app(rt)
    read_path = app.state.api.read_path
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nof0.test") as client:
        for step in range(1, 200):
            action = rng.random()
            if action < 0.35:
                superseded_at[current] = rt.clock.now_ms()
                current = 100.0 + step
                await writer.ingest([tick("BTC", current, step * 1000)])
                await invalidate_api_payloads(rt, ["crypto-prices"])
                read_path.mark_stale(["crypto-prices"])
            elif action < 0.45:
                await read_path.revalidated()
            elif action < 0.5:
                await read_path.rebuilt(["crypto-prices"])
            rt.clock.advance(rng.choice([0, 1, 50, 250, 400, LOCAL_FRESH_MS]))
            price = await _price(client)
            if price != current:
                served_stale += 1
                assert price in superseded_at, (step, price, current)
                assert rt.clock.now_ms() - superseded_at[price] < LOCAL_FRESH_MS, (step, price, current)
    assert served_stale > 0  # the interleavings did exercise stale while revalidate
