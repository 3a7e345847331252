"""Every API process hears every writer: a write in one runtime drops the responses an API app of
another runtime cached (the changes stream, ``api.listener``), in Redis and in its near cache."""

from __future__ import annotations

import dataclasses

from nof0.cache.changes import Change, announce
from nof0.ingest.service import IngestService
from nof0.kernel.clock import FixedClock
from nof0.runtime import Servers, open_runtime
from tests.api.conftest import NOW_MS, listening_client
from tests.ingest.factories import symbol, tick


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
            await listener.caught_up()
            assert await _price(client) == 101.5
            cached = await rt.redis.exists(rt.keys.api_payload("crypto-prices", "all", "short").name)
            assert cached == 1  # rebuilt and cached again by that request


async def test_changes_that_feed_no_endpoint_drop_nothing(clock_rt):
    rt = clock_rt
    await IngestService(rt).ingest([symbol("BTC"), tick("BTC", 100.0, 0)])
    key = rt.keys.api_payload("crypto-prices", "all", "short").name
    async with listening_client(rt) as (client, listener):
        assert await _price(client) == 100.0
        await announce(rt, [Change("market_meta", symbols=("BTC",)), Change("trader_state", models=("m1",))])
        await listener.caught_up()
        assert await rt.redis.exists(key) == 1
        await announce(rt, [Change("price_tick", symbols=("BTC",), data={"BTC": 100.0})])
        await listener.caught_up()
        assert await rt.redis.exists(key) == 0


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
