"""/api/account-totals: the hourly series per model, from equity snapshots and positions (docs/api.md)."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from nof0.api.invalidate import invalidate_api_payloads
from nof0.kernel.clock import FixedClock
from tests.api.conftest import NOW_MS, client_for
from tests.api.seed import execute_many, seconds_to_dt, seed_equity, seed_position, seed_ticks

T0 = 1_760_738_409_834  # m1's inception, ms
MIN = 60_000


@pytest.fixture
async def series(clock_rt):
    rt = clock_rt
    await seed_equity(rt, "m1", [
        (T0 - 1000, 9999, 0, 0),  # before inception: not part of the series
        (T0 + 10 * MIN, 10000, 0, 0),
        (T0 + 50 * MIN, 10100, 5, 95),
        (T0 + 70 * MIN, 10200, 6, 194),
        (T0 + 130 * MIN, 9900, -50, -50),
        (T0 + 135 * MIN, 10050, -50, 100),
    ])
    await execute_many(rt, "INSERT INTO accounts (model_id, starting_capital_usd, inception_at) VALUES (%s, %s, %s)",
                       [("m1", 10000, seconds_to_dt(T0 / 1000))])
    await seed_equity(rt, "m2", [(T0, 500, 0, 0), (T0 + 60 * MIN, 550, 50, 0)])  # no account: first snapshot
    await seed_ticks(rt, "BTC", [(T0 + 45 * MIN, 101.0), (T0 + 60 * MIN, 102.0)])
    await seed_ticks(rt, "ETH", [(T0 + 125 * MIN, 3000.0), (T0 + 140 * MIN, 3100.0)])
    await seed_position(rt, id="b", model_id="m1", symbol="BTC", side="long", entry_price=100.0, quantity=2.0,
                        leverage=10, entry_ts_ms=T0 + 40 * MIN, status="closed", exit_ts_ms=T0 + 100 * MIN,
                        exit_price=103.0)
    await seed_position(rt, id="e", model_id="m1", symbol="ETH", side="short", entry_price=3050.0, quantity=1.0,
                        entry_ts_ms=T0 + 120 * MIN, metadata={"risk_usd": 40})
    return rt


async def test_one_record_per_model_per_hour(series, client):
    body = (await client.get("/api/account-totals")).json()
    assert body["serverTime"] == NOW_MS and body["lastHourlyMarkerRead"] == 2
    records = {r["id"]: r for r in body["accountTotals"]}
    assert list(records) == ["m1_0", "m2_0", "m1_1", "m2_1", "m1_2"]  # by hour, then model
    m1_0, m1_1, m1_2 = records["m1_0"], records["m1_1"], records["m1_2"]
    # the last snapshot of each hour; the unrealized PnL is its positions' (BTC 2 x (101 - 100)), and
    # the equity holds that instead of the snapshot's own 95
    assert m1_0["timestamp"] == (T0 + 50 * MIN) / 1000 and m1_0["dollar_equity"] == 10100 - 95 + 2
    assert (m1_0["realized_pnl"], m1_0["total_unrealized_pnl"]) == (5, 2)
    assert (m1_0["since_inception_minute_marker"], m1_0["since_inception_hourly_marker"]) == (50, 0)
    assert (m1_2["since_inception_minute_marker"], m1_2["since_inception_hourly_marker"]) == (135, 2)
    # equity 10007, 10200 - 194 + 4, 10050 - 100 + 50 (ETH short 3050 -> 3000)
    assert [m1_0["cum_pnl_pct"], m1_1["cum_pnl_pct"], m1_2["cum_pnl_pct"]] == pytest.approx([0.07, 0.1, 0.0])
    # m2 has no account row: inception is its first snapshot, starting capital the default 10000
    assert records["m2_1"]["since_inception_hourly_marker"] == 1
    assert records["m2_1"]["cum_pnl_pct"] == pytest.approx((550 / 10000 - 1) * 100)
    assert set(m1_0) == {"id", "model_id", "timestamp", "realized_pnl", "total_unrealized_pnl", "dollar_equity",
                         "sharpe_ratio", "cum_pnl_pct", "since_inception_minute_marker",
                         "since_inception_hourly_marker", "positions"}


async def test_positions_open_at_each_record_marked_at_that_time(series, client):
    records = {r["id"]: r for r in (await client.get("/api/account-totals")).json()["accountTotals"]}
    assert list(records["m1_0"]["positions"]) == ["BTC"]
    assert records["m1_0"]["positions"]["BTC"]["current_price"] == 101.0  # last tick at or before +50 min
    assert records["m1_0"]["positions"]["BTC"]["unrealized_pnl"] == pytest.approx(2.0)
    assert records["m1_1"]["positions"]["BTC"]["current_price"] == 102.0
    assert list(records["m1_2"]["positions"]) == ["ETH"]  # BTC closed at +100 min
    eth = records["m1_2"]["positions"]["ETH"]
    assert eth["quantity"] == -1.0 and eth["current_price"] == 3000.0 and eth["risk_usd"] == 40
    assert records["m2_0"]["positions"] == {}


async def test_sharpe_over_the_snapshots_so_far(series, client):
    records = {r["id"]: r for r in (await client.get("/api/account-totals")).json()["accountTotals"]}
    equity = [10000, 10100, 10200, 9900, 10050]
    returns = [b / a - 1 for a, b in zip(equity, equity[1:])]
    assert records["m1_0"]["sharpe_ratio"] == 0  # one return only
    assert records["m1_1"]["sharpe_ratio"] == pytest.approx(statistics.mean(returns[:2]) / statistics.stdev(returns[:2]))
    assert records["m1_2"]["sharpe_ratio"] == pytest.approx(statistics.mean(returns) / statistics.stdev(returns))


async def test_total_unrealized_is_the_sum_of_the_positions_and_equity_includes_it(series, client):
    records = (await client.get("/api/account-totals")).json()["accountTotals"]
    snapshot = {"m1_0": (10100, 95), "m1_1": (10200, 194), "m1_2": (10050, 100), "m2_0": (500, 0), "m2_1": (550, 0)}
    for r in records:
        unrealized = sum(p["unrealized_pnl"] for p in r["positions"].values())
        equity, own_unrealized = snapshot[r["id"]]
        assert r["total_unrealized_pnl"] == pytest.approx(unrealized), r["id"]
        assert r["dollar_equity"] == pytest.approx(equity - own_unrealized + unrealized), r["id"]


async def test_last_hourly_marker_returns_the_records_from_that_marker_on(series, client):
    since_1 = (await client.get("/api/account-totals?lastHourlyMarker=1")).json()
    assert [r["id"] for r in since_1["accountTotals"]] == ["m1_1", "m2_1", "m1_2"]  # marker 1 included
    assert since_1["lastHourlyMarkerRead"] == 2 and since_1["serverTime"] == NOW_MS
    since_0 = (await client.get("/api/account-totals?lastHourlyMarker=0")).json()
    assert since_0["accountTotals"] == (await client.get("/api/account-totals")).json()["accountTotals"]
    last = (await client.get("/api/account-totals?lastHourlyMarker=2")).json()
    assert [r["id"] for r in last["accountTotals"]] == ["m1_2"] and last["lastHourlyMarkerRead"] == 2
    later = (await client.get("/api/account-totals?lastHourlyMarker=7")).json()
    assert later["accountTotals"] == [] and later["lastHourlyMarkerRead"] == 7
    again = await client.get("/api/account-totals?lastHourlyMarker=1")
    assert again.json() == since_1  # derived once per version, same bytes after
    assert again.headers["etag"] == (await client.get("/api/account-totals?lastHourlyMarker=1")).headers["etag"]


async def test_the_running_hours_record_is_marked_now_and_keeps_arriving_fresh(series):
    """A dashboard polling with the current hour's marker sees that hour's record move with the market."""
    clock = FixedClock(T0 + 138 * MIN)  # hour 2 of m1 is running; its last snapshot is at +135 min
    live = dataclasses.replace(series, clock=clock)
    await seed_ticks(live, "ETH", [(T0 + 137 * MIN, 2990.0)])
    async with client_for(live) as c:
        first = (await c.get("/api/account-totals?lastHourlyMarker=2")).json()
        [m1_2] = first["accountTotals"]
        assert m1_2["id"] == "m1_2" and m1_2["timestamp"] == (T0 + 138 * MIN) / 1000
        assert m1_2["since_inception_minute_marker"] == 138
        assert m1_2["positions"]["ETH"]["current_price"] == 2990.0  # not 3000, the mark at the snapshot
        assert m1_2["total_unrealized_pnl"] == pytest.approx(60.0)
        assert m1_2["dollar_equity"] == pytest.approx(10050 - 100 + 60)
        assert m1_2["realized_pnl"] == -50  # from the hour's last snapshot

        clock.advance(MIN)
        await seed_ticks(live, "ETH", [(T0 + 139 * MIN - 1, 2980.0)])
        await invalidate_api_payloads(live, ["account-totals"])  # what a committed tick batch does
        [fresh] = (await c.get("/api/account-totals?lastHourlyMarker=2")).json()["accountTotals"]
        assert fresh["timestamp"] == (T0 + 139 * MIN) / 1000 and fresh["since_inception_minute_marker"] == 139
        assert fresh["positions"]["ETH"]["current_price"] == 2980.0
        assert fresh["total_unrealized_pnl"] == pytest.approx(70.0)
        # the earlier hours keep their snapshots' marks
        history = {r["id"]: r for r in (await c.get("/api/account-totals")).json()["accountTotals"]}
        assert history["m1_1"]["timestamp"] == (T0 + 70 * MIN) / 1000
        assert history["m2_1"]["timestamp"] == (T0 + 60 * MIN) / 1000  # m2's hour 1 is over (inception T0)


def test_derived_variants_are_bounded_by_bytes():
    from nof0.api.derived import DerivedPayloads
    from nof0.api.payload import Payload

    base = Payload.encode({"accountTotals": [{"x": "y" * 1000}] * 10}, gzip_min=1024, now_ms=1)
    cache = DerivedPayloads(gzip_min=1024, max_bytes=25_000)
    for n in range(10):
        cache.get(base, n, lambda body, n=n: {**body, "accountTotals": body["accountTotals"][n:]})
    assert cache.held_bytes <= 25_000
    again = cache.get(base, 9, lambda body: {"other": True})  # the newest variant is still held
    assert b"other" not in again.body


def test_variants_of_an_older_version_are_dropped_when_a_newer_one_is_derived_from():
    from nof0.api.derived import DerivedPayloads
    from nof0.api.payload import Payload

    cache = DerivedPayloads(gzip_min=1024)
    old = Payload.encode({"accountTotals": [1, 2, 3]}, gzip_min=1024, now_ms=1)
    new = Payload.encode({"accountTotals": [4, 5, 6]}, gzip_min=1024, now_ms=2)
    for n in (1, 2):
        cache.get(old, ("limit", n), lambda body, n=n: body["accountTotals"][:n])
    other = cache.get(old, ("marker", 0), lambda body: body)
    held = cache.held_bytes
    cache.get(new, ("limit", 1), lambda body: body["accountTotals"][:1])
    assert len(cache._lru) == 2 and cache.held_bytes < held  # old limits gone, the other kind kept
    assert cache.get(old, ("marker", 0), lambda body: {"rebuilt": True}) is other
