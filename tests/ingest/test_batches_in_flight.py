"""An input at hand is written batch after batch with the next ones decoded ahead, and two batches of ticks
in flight at once (ingest/service.py ``_run_overlapped``): what a reader of Postgres, Redis and the changes
stream sees must be what one batch at a time would have left, in input order."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

import nof0.ingest.service as service_module
import nof0.prices.repository as prices_repository
from nof0.cache.changes import read_changes
from nof0.ingest.service import IngestService
from tests.ingest import factories as f
from tests.ingest.factories import T0

BATCH = 40


def lines(*events) -> list[bytes]:
    return [msgspec.json.encode(e) for e in events]


async def rows(rt, sql: str, *params) -> list[dict]:
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def register(rt) -> None:
    await IngestService(rt).ingest([f.model("m1"), f.symbol("BTC"), f.symbol("ETH")])


def feed(batches: int, start: int = 0) -> list[bytes]:
    """A feed's ticks: BTC and ETH every millisecond, prices rising, ``BATCH`` ticks a batch."""
    return lines(*(f.tick(("BTC", "ETH")[i % 2], 100.0 + i, i // 2)
                   for i in range(start * BATCH, (start + batches) * BATCH)))


async def test_publishes_and_changes_follow_input_order_while_batches_overlap(rt, redis_sync, monkeypatch):
    """Earlier batches are slowed more (their read of price_latest, their announcement): Redis must still
    end at the latest prices, and the changes stream must list the batches in input order."""
    await register(rt)
    delays = iter(range(15 * 13, 0, -15))  # earlier publishes slower: a race would leave an older price last
    real_list_latest = prices_repository.list_latest

    async def slow_list_latest(conn, symbols=None):
        found = await real_list_latest(conn, symbols)
        await asyncio.sleep(next(delays, 0) / 1000)
        return found

    real_announce = service_module.announce
    announce_delays = iter(range(30, 0, -2))

    async def slow_announce(rt_, changes):
        await asyncio.sleep(next(announce_delays, 0) / 1000)
        await real_announce(rt_, changes)

    monkeypatch.setattr(prices_repository, "list_latest", slow_list_latest)
    monkeypatch.setattr(service_module, "announce", slow_announce)
    stream_start = "0-0"
    report = await IngestService(rt, batch_size=BATCH).ingest_lines(feed(12), source="test")
    assert (report.accepted, report.duplicates, report.rejected) == (12 * BATCH, 0, 0)

    last = 12 * BATCH - 1  # the last tick: ETH (odd), price 100 + last
    latest = {r["symbol"]: (r["price"], r["ts_ms"] - T0) for r in await rows(rt, "SELECT * FROM price_latest")}
    assert latest == {"BTC": (100.0 + last - 1, (last - 1) // 2), "ETH": (100.0 + last, last // 2)}
    for symbol, (price, dt) in latest.items():
        assert json.loads(redis_sync.get(rt.keys.price_latest(symbol).name)) == {
            "symbol": symbol, "price": price, "timestamp": T0 + dt}
    assert {s: v["price"] for s, v in json.loads(redis_sync.get(rt.keys.crypto_prices().name)).items()} == {
        s: p for s, (p, _) in latest.items()}

    changes = await read_changes(rt.redis, rt.keys, stream_start, block_ms=0, count=1000)
    btc = [c.data["BTC"] for _, c in changes if c.kind == "price_tick"]
    assert len(btc) == 12 and btc == sorted(btc), btc  # one entry per batch, in input order


async def test_a_key_in_two_batches_in_flight_is_stored_once(rt):
    """A replay overlapping itself across consecutive batches: the later batch's COPY meets the earlier
    one's keys (waiting for its commit) and falls back to the natural-key insert."""
    await register(rt)
    first = [f.tick("BTC", 100.0 + i, i) for i in range(BATCH)]
    second = [f.tick("BTC", 100.0 + i, i) for i in range(BATCH // 2, BATCH // 2 + BATCH)]
    report = await IngestService(rt, batch_size=BATCH).ingest_lines(lines(*first, *second), source="test")
    assert (report.accepted, report.duplicates) == (BATCH + BATCH // 2, BATCH // 2)
    stored = await rows(rt, "SELECT ts_ms - %s AS dt, price FROM price_ticks ORDER BY ts_ms", T0)
    assert [(r["dt"], r["price"]) for r in stored] == [(i, 100.0 + i) for i in range(BATCH + BATCH // 2)]
    assert (await rows(rt, "SELECT price FROM price_latest"))[0]["price"] == 100.0 + BATCH + BATCH // 2 - 1


@pytest.mark.parametrize("kind", ["ticks", "fills"])
async def test_a_failed_batch_stops_the_input_after_the_writes_in_flight(rt, monkeypatch, kind):
    """A write that fails (not the data: the database went away) ends the input with its error. Fills are
    written strictly one batch after another, so nothing after the failed batch is written; ticks may have
    one more batch in flight beside it, never more."""
    await register(rt)
    failing = 3
    if kind == "ticks":
        events = feed(10)
        patched, name = service_module, "stage_ticks"
    else:
        events = lines(*(f.fill("buy", 100.0, 1.0, tid) for tid in range(1, 10 * BATCH + 1)))
        patched, name = service_module, "stage_fills"
    real_stage = getattr(patched, name)
    calls = 0

    async def stage(rt_, conn, events_):
        nonlocal calls
        calls += 1
        if calls == failing:
            raise ConnectionError("the database went away")
        return await real_stage(rt_, conn, events_)

    stages = tuple((tag, stage if fn is real_stage else fn) for tag, fn in service_module.STAGES)
    monkeypatch.setattr(service_module, "STAGES", stages)
    with pytest.raises(ConnectionError, match="went away"):
        await IngestService(rt, batch_size=BATCH).ingest_lines(events, source="test")
    table = "price_ticks" if kind == "ticks" else "fills"
    written = (await rows(rt, f"SELECT count(*) AS n FROM {table}"))[0]["n"] // BATCH
    assert written == failing - 1 if kind == "fills" else failing - 1 <= written <= failing
    assert calls <= failing + (kind == "ticks")
