"""Position events through real Postgres and Redis: versions, closes, one open position per symbol, and the
position JSON (review of issue 3, findings 4, 5, 12 and 13)."""

from __future__ import annotations

import itertools
import json

import pytest

from nof0.ingest.service import IngestService
from nof0.trades.payloads import position_json
from tests.ingest import factories as f
from tests.ingest.factories import T0

MODELS = [f"m{i}" for i in range(1, 7)]
REGISTER = (*(f.model(m) for m in MODELS), f.symbol("BTC"), f.symbol("ETH"))


async def rows(rt, sql: str, *params) -> list[dict]:
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def ingest(rt, *events):
    return await IngestService(rt).ingest(list(events))


# ------------------------------------------------------------------------------------- finding 5: versions

async def test_adjustments_and_a_close_in_any_order_give_the_newest_state_s_round_trip(rt):
    await ingest(rt, *REGISTER)
    outcomes = []
    for n, order in enumerate(itertools.permutations(["v1", "v2", "close"])):
        m, pid = MODELS[n], f"p{n}"
        events = {"v1": f.position(pid, model_id=m, quantity=1.0),
                  "v2": f.position(pid, model_id=m, quantity=2.0, updated_ts_ms=T0 + 500),
                  "close": f.close(pid, exit_price=110.0, dt=1000)}
        reports = [await ingest(rt, events[name]) for name in order]  # one batch each: arrival order matters most
        assert all(r.rejected == 0 for r in reports), order
        if order.index("v2") > order.index("v1"):  # the newer state arriving later is stored, never a duplicate
            assert reports[order.index("v2")].accepted == 1, order
        (trade,) = await rows(rt, "SELECT quantity, realized_gross_pnl FROM trades WHERE model_id = %s", m)
        (pos,) = await rows(rt, "SELECT status, quantity, exit_price FROM positions WHERE id = %s", pid)
        outcomes.append((trade["quantity"], trade["realized_gross_pnl"], pos["status"], pos["quantity"]))
    assert outcomes == [(2.0, 20.0, "closed", 2.0)] * 6


async def test_an_older_state_is_a_duplicate_and_equal_millisecond_states_resolve_the_same_in_any_order(rt):
    await ingest(rt, *REGISTER)
    newer = f.position("p1", quantity=2.0, updated_ts_ms=T0 + 500)
    report = await ingest(rt, newer, f.position("p1", quantity=1.0))
    assert (report.accepted, report.duplicates) == (1, 1)
    assert (await ingest(rt, f.position("p1", quantity=3.0, updated_ts_ms=T0 + 100))).duplicates == 1
    (pos,) = await rows(rt, "SELECT quantity, updated_ts_ms FROM positions")
    assert (pos["quantity"], pos["updated_ts_ms"]) == (2.0, T0 + 500)
    # two different states of one millisecond (no updated_ts_ms): the same one wins whichever comes first
    a = [f.position("pa", model_id="m2", leverage=5.0), f.position("pa", model_id="m2", leverage=20.0)]
    b = [f.position("pb", model_id="m3", leverage=20.0), f.position("pb", model_id="m3", leverage=5.0)]
    for first, second in (a, b):
        await ingest(rt, first)
        await ingest(rt, second)
    won = {r["id"]: r["leverage"] for r in await rows(rt, "SELECT id, leverage FROM positions WHERE id IN ('pa', 'pb')")}
    assert won["pa"] == won["pb"]


async def test_a_newer_state_of_a_closed_position_stays_closed_and_updates_its_round_trip(rt, redis_sync):
    await ingest(rt, *REGISTER, f.position("p1", quantity=1.0), f.close("p1", exit_price=110.0, dt=1000))
    report = await ingest(rt, f.position("p1", quantity=3.0, updated_ts_ms=T0 + 900))
    assert report.accepted == 1
    (pos,) = await rows(rt, "SELECT status, quantity FROM positions")
    assert (pos["status"], pos["quantity"]) == ("closed", 3.0)
    (trade,) = await rows(rt, "SELECT id, quantity, realized_gross_pnl FROM trades")
    assert (trade["quantity"], trade["realized_gross_pnl"]) == (3.0, 30.0)
    assert redis_sync.exists(rt.keys.positions("m1").name) == 0  # nothing open to publish
    ops = [e[b"op"] for _, e in redis_sync.xrange(rt.keys.trades_stream().name)]
    assert ops == [b"add", b"update"]


# ------------------------------------------------------------------------------------- finding 4: close before entry

async def test_a_close_before_the_entry_is_refused_when_it_arrives_after_the_position(rt):
    await ingest(rt, *REGISTER, f.position("p1", dt=10_000))
    report = await ingest(rt, f.close("p1", dt=5_000))
    assert (report.accepted, report.rejected) == (0, 1)
    (r,) = report.rejections
    assert (r.event_type, r.field, r.value, r.where) == ("position_close", "exit_ts_ms", T0 + 5_000, "event 1")
    assert "before the entry_ts_ms" in r.reason
    assert await rows(rt, "SELECT * FROM position_closes") == []
    # the position is not blocked: it can be adjusted and closed properly
    report = await ingest(rt, f.position("p1", dt=10_000, quantity=3.0, updated_ts_ms=T0 + 11_000),
                          f.close("p1", exit_price=120.0, dt=20_000))
    assert (report.accepted, report.rejected) == (2, 0)
    (trade,) = await rows(rt, "SELECT quantity, exit_ts_ms FROM trades")
    assert (trade["quantity"], trade["exit_ts_ms"]) == (3.0, T0 + 20_000)


async def test_a_close_before_the_entry_is_refused_when_its_position_arrives_later(rt):
    await ingest(rt, *REGISTER)
    assert (await ingest(rt, f.close("p2", dt=5_000))).accepted == 1  # nothing to compare with yet
    report = await ingest(rt, f.position("p2", dt=10_000))
    assert (report.accepted, report.rejected) == (1, 1)
    (r,) = report.rejections
    assert (r.event_type, r.field, r.value) == ("position_close", "exit_ts_ms", T0 + 5_000)
    assert json.loads(r.raw) == {"type": "position_close", "id": "p2", "exit_price": 110.0, "exit_ts_ms": T0 + 5_000,
                                 "exit_oid": None, "commission": None}
    (pos,) = await rows(rt, "SELECT status FROM positions")
    assert pos["status"] == "open"
    assert await rows(rt, "SELECT * FROM position_closes") == []
    (dead,) = await rows(rt, "SELECT event_type, field FROM ingest_dead_letters")
    assert (dead["event_type"], dead["field"]) == ("position_close", "exit_ts_ms")
    assert (await ingest(rt, f.position("p2", dt=10_000, quantity=5.0, updated_ts_ms=T0 + 12_000))).accepted == 1
    assert (await ingest(rt, f.close("p2", dt=30_000))).accepted == 1
    assert (await rows(rt, "SELECT status FROM positions"))[0]["status"] == "closed"


async def test_a_newer_state_that_moves_the_entry_after_the_close_reopens_the_position(rt, redis_sync):
    await ingest(rt, *REGISTER, f.position("p1", dt=0), f.close("p1", dt=5_000))
    assert len(await rows(rt, "SELECT * FROM trades")) == 1
    report = await ingest(rt, f.position("p1", dt=8_000, updated_ts_ms=T0 + 9_000))
    assert (report.accepted, report.rejected) == (1, 1)
    assert report.rejections[0].field == "exit_ts_ms"
    assert (await rows(rt, "SELECT status FROM positions"))[0]["status"] == "open"
    assert await rows(rt, "SELECT * FROM trades") == []
    ops = [e[b"op"] for _, e in redis_sync.xrange(rt.keys.trades_stream().name)]
    assert ops == [b"add", b"delete"]


# ------------------------------------------------------------------------------------- finding 12: one per symbol

async def test_a_second_open_position_on_a_symbol_is_refused(rt, redis_sync):
    await ingest(rt, *REGISTER, f.tick("ETH", 3900.0))
    report = await ingest(rt, f.position("p2", symbol="ETH", quantity=1.0, entry_price=3800.0),
                          f.position("p3", symbol="ETH", side="short", quantity=5.0, entry_price=3850.0))
    assert (report.accepted, report.rejected) == (1, 1)
    (r,) = report.rejections
    assert (r.event_type, r.field, r.value, r.where) == ("position", "symbol", "ETH", "event 2")
    assert "open ETH position 'p2'" in r.reason and "position 'p3' would be a second one" in r.reason
    published = redis_sync.hgetall(rt.keys.positions("m1").name)
    assert list(published) == [b"ETH"] and json.loads(published[b"ETH"])["quantity"] == 1.0
    # later, in another batch: still refused while p2 is open; accepted once p2 is closed
    assert (await ingest(rt, f.position("p3", symbol="ETH", side="short", quantity=5.0))).rejected == 1
    report = await ingest(rt, f.close("p2", exit_price=3900.0, dt=1000),
                          f.position("p3", symbol="ETH", side="short", quantity=5.0, dt=2000))
    assert (report.accepted, report.rejected) == (2, 0)
    assert json.loads(redis_sync.hget(rt.keys.positions("m1").name, "ETH"))["quantity"] == -5.0
    # another model, or another symbol, is no conflict; an adjustment of the open one is none either
    report = await ingest(rt, f.position("q1", model_id="m2", symbol="ETH"), f.position("p4", symbol="BTC"),
                          f.position("p3", symbol="ETH", side="short", quantity=4.0, dt=2000, updated_ts_ms=T0 + 3000))
    assert (report.accepted, report.rejected) == (3, 0)


async def test_a_position_beside_an_open_fill_position_is_refused(rt):
    await ingest(rt, *REGISTER, f.fill("buy", 100, 1, 1))
    report = await ingest(rt, f.position("p1", symbol="BTC"))
    assert report.rejected == 1 and report.rejections[0].field == "symbol"


# ------------------------------------------------------------------------------------- finding 13: position JSON

async def test_metadata_cannot_shadow_computed_position_fields(rt, redis_sync):
    await ingest(rt, *REGISTER, f.tick("BTC", 104.0))
    report = await ingest(rt, f.position("p1", metadata={"current_price": 1.0, "risk_usd": 300}),
                          f.position("p2", symbol="ETH", metadata={"quantity": 99, "liquidation_price": 80.0}))
    assert (report.accepted, report.rejected) == (0, 2)
    assert [(r.field, r.value) for r in report.rejections] == [("metadata.current_price", 1.0), ("metadata.quantity", 99)]
    report = await ingest(rt, f.position("p1", quantity=2.0, metadata={"risk_usd": 300, "liquidation_price": 80.0}))
    assert report.accepted == 1
    published = json.loads(redis_sync.hget(rt.keys.positions("m1").name, "BTC"))
    assert (published["current_price"], published["unrealized_pnl"], published["quantity"], published["risk_usd"],
            published["liquidation_price"]) == (104.0, 8.0, 2.0, 300, 80.0)


@pytest.mark.parametrize("key", ["current_price", "unrealized_pnl", "margin", "quantity", "symbol", "entry_price"])
def test_computed_fields_win_over_a_stored_row_s_metadata(key):
    row = {"id": "p1", "symbol": "BTC", "side": "short", "entry_price": 100.0, "quantity": 2.0, "leverage": 4.0,
           "entry_ts_ms": T0, "metadata": {key: "stale", "risk_usd": 50}}
    out = position_json(row, 90.0)
    expected = {"current_price": 90.0, "unrealized_pnl": 20.0, "margin": 45.0, "quantity": -2.0, "symbol": "BTC",
                "entry_price": 100.0}
    assert out[key] == expected[key] and out["risk_usd"] == 50
