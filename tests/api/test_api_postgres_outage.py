"""Postgres outages seen by the API: a real outage, a TCP proxy in front of the test server cut and
restored (the server itself keeps running for the other tests)."""

from __future__ import annotations

import pytest_asyncio
from structlog.testing import capture_logs

from nof0.api.read_path import POSTGRES_RETRY_MS
from nof0.config import Duration
from nof0.kernel.clock import FixedClock
from nof0.runtime import Servers, open_runtime
from tests.api.conftest import NOW_MS, client_for
from tests.api.seed import seed_snapshot
from tests.tcpproxy import TcpProxy, through_proxy, upstream_of

MISSES = ("/api/positions", "/api/since-inception-values", "/api/conversations", "/api/positions")


@pytest_asyncio.fixture
async def proxied(config, pg_dsn):
    """A runtime whose Postgres connections go through a proxy the test can cut."""
    proxy = await TcpProxy(*upstream_of(pg_dsn)).start()
    # the first miss of an outage waits this long for a connection (10 s by default)
    config.root.postgres.connect_timeout = Duration(4)
    try:
        async with open_runtime(config, Servers(through_proxy(pg_dsn, proxy), config.root.redis.url),
                                clock=FixedClock(NOW_MS)) as rt:
            await seed_snapshot(rt)
            yield rt, proxy
    finally:
        await proxy.close()


def _events(logs: list[dict], prefix: str) -> list[str]:
    return [e["event"] for e in logs if e["event"].startswith(prefix)]


async def test_while_postgres_is_down_misses_answer_503_without_waiting(proxied):
    rt, proxy = proxied
    async with client_for(rt) as c:
        assert (await c.get("/api/trades")).status_code == 200
        await proxy.cut()
        with capture_logs() as logs:
            first = await c.get("/api/crypto-prices")  # finds the outage: waits for the connect timeout
            assert first.status_code == 503 and first.json()["error"] == "unavailable"
            asked = rt.pool.get_stats().get("requests_num", 0)
            for path in MISSES:  # known down: answered at once, nobody queues for a connection
                r = await c.get(path)
                assert r.status_code == 503 and r.json()["error"] == "unavailable", path
            assert rt.pool.get_stats().get("requests_num", 0) == asked
            assert (await c.get("/api/trades")).status_code == 200  # what is cached is still served
        assert _events(logs, "postgres") == ["postgres unavailable"]  # once per outage, not per request

        await proxy.restore()
        with capture_logs() as logs:
            assert (await c.get("/api/positions")).status_code == 503  # inside the retry window: no probe
            rt.clock.advance(POSTGRES_RETRY_MS)
            assert (await c.get("/api/positions")).status_code == 200  # the probe finds it back
            assert (await c.get("/api/crypto-prices")).status_code == 200
        assert _events(logs, "postgres") == ["postgres available again"]


async def test_a_postgres_restart_does_not_answer_503_on_a_stale_pooled_connection(proxied):
    rt, proxy = proxied
    async with client_for(rt) as c:
        assert (await c.get("/api/trades")).status_code == 200  # a connection now waits in the pool
        await proxy.cut()  # the server goes away and every connection to it dies
        await proxy.restore()  # and comes back before the next request
        assert (await c.get("/api/positions")).status_code == 200
        assert (await c.get("/api/crypto-prices")).status_code == 200
