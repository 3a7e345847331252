"""Every event type through real Postgres and Redis: rows, key types, values and TTLs (design 2.4, 3.2, 4.1)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nof0.kernel.events import MarketMeta
from nof0.ingest.service import IngestService
from nof0.prices.repository import insert_ticks
from nof0.trades.payloads import position_json, trade_json
from tests.ingest import factories as f
from tests.ingest.factories import T0

META = json.loads((Path(__file__).parents[1] / "fixtures" / "hyperliquid-meta-and-asset-ctxs.json").read_text())


async def rows(rt, sql: str, *params) -> list[dict]:
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def ingest(rt, *events, service: IngestService | None = None):
    report = await (service or IngestService(rt)).ingest(list(events))
    return report


def ttl_class_ms(rt, name: str) -> int:
    return rt.keys.ttl_ms(name)


def assert_key(redis_sync, key, kind: str) -> None:
    assert redis_sync.type(key.name).decode() == kind, key.name
    pttl = redis_sync.pttl(key.name)
    if key.ttl_ms is None:
        assert pttl == -1
    else:
        assert 0 < pttl <= key.ttl_ms, (key.name, pttl, key.ttl_ms)


REGISTER = (f.model("m1"), f.model("m2"), f.symbol("BTC"), f.symbol("ETH"))


# ------------------------------------------------------------------------------------- registration

async def test_models_and_symbols_register_and_unknown_ones_are_rejected(rt):
    report = await ingest(rt, f.model("m1", starting_capital_usd=5000.0, inception_ts=1760738409.834185,
                                      inception_id="117506d4-d377-47b2-a90b-b86853f796d7"),
                          f.symbol("BTC", quote_currency="USDC"), f.tick("ETH"), f.fill("buy", 1, 1, 1, model_id="zz"))
    assert (report.accepted, report.rejected) == (2, 2)
    assert {(r.field, r.value) for r in report.rejections} == {("symbol", "ETH"), ("model_id", "zz")}
    assert "register it first" in report.rejections[0].reason
    (acct,) = await rows(rt, "SELECT * FROM accounts")
    assert acct["starting_capital_usd"] == 5000.0
    assert acct["inception_at"] == datetime(2025, 10, 17, 22, 0, 9, 834185, tzinfo=timezone.utc)
    assert str(acct["inception_id"]) == "117506d4-d377-47b2-a90b-b86853f796d7"
    assert (await rows(rt, "SELECT quote_currency FROM symbols"))[0]["quote_currency"] == "USDC"
    # a later model event without optional fields keeps them; registration comes first in a batch
    report = await ingest(rt, f.model("m1", display_name="Renamed"), f.model("m3"), f.tick("BTC"),
                          f.message("m3"))
    assert (report.accepted, report.rejected) == (4, 0)
    (acct,) = await rows(rt, "SELECT * FROM accounts WHERE model_id = 'm1'")
    assert acct["starting_capital_usd"] == 5000.0 and str(acct["inception_id"]).startswith("117506d4")
    assert (await rows(rt, "SELECT display_name FROM models WHERE id = 'm1'"))[0]["display_name"] == "Renamed"


async def test_an_event_before_its_registration_in_a_batch_is_rejected(rt):
    report = await ingest(rt, f.tick("BTC"), f.symbol("BTC"), f.tick("BTC", dt=1))
    assert (report.accepted, report.rejected) == (2, 1)
    assert report.rejections[0].line == 1


# ------------------------------------------------------------------------------------- prices

async def test_ticks_rows_latest_and_keys(rt, redis_sync):
    await ingest(rt, *REGISTER)
    report = await ingest(rt, f.tick("BTC", 100.0, 0), f.tick("BTC", 101.0, 5), f.tick("ETH", 4000.0, 3),
                          f.tick("BTC", 100.5, 5, source="other"), f.tick("BTC", 101.0, 5))
    assert (report.accepted, report.duplicates) == (4, 1)
    assert len(await rows(rt, "SELECT * FROM price_ticks")) == 4
    latest = {r["symbol"]: (r["price"], r["ts_ms"]) for r in await rows(rt, "SELECT * FROM price_latest")}
    assert latest == {"BTC": (101.0, T0 + 5), "ETH": (4000.0, T0 + 3)}
    key = rt.keys.price_latest("BTC")
    assert_key(redis_sync, key, "string")
    assert json.loads(redis_sync.get(key.name)) == {"symbol": "BTC", "price": 101.0, "timestamp": T0 + 5}
    assert_key(redis_sync, rt.keys.crypto_prices(), "string")
    assert json.loads(redis_sync.get(rt.keys.crypto_prices().name)) == {
        "BTC": {"symbol": "BTC", "price": 101.0, "timestamp": T0 + 5},
        "ETH": {"symbol": "ETH", "price": 4000.0, "timestamp": T0 + 3},
    }
    # an older tick is stored but never moves the latest price back
    await ingest(rt, f.tick("BTC", 50.0, 1))
    assert (await rows(rt, "SELECT price FROM price_latest WHERE symbol = 'BTC'"))[0]["price"] == 101.0
    assert json.loads(redis_sync.get(key.name))["price"] == 101.0


async def test_a_batch_overlapping_stored_ticks_stores_only_the_new_ones(rt):
    """A replay that goes on past where it stopped: one tick per natural key (the greatest price), the
    stored ones counted as duplicates, the latest price moved by the new ones only."""
    await ingest(rt, *REGISTER)
    first = await ingest(rt, f.tick("BTC", 100.0, 0), f.tick("BTC", 102.0, 1), f.tick("BTC", 101.0, 1))
    assert (first.accepted, first.duplicates) == (2, 1)  # one tick per key: the greatest price
    overlap = await ingest(rt, f.tick("BTC", 100.0, 0), f.tick("BTC", 103.0, 2), f.tick("ETH", 4000.0, 2))
    assert (overlap.accepted, overlap.duplicates) == (2, 1)
    stored = {(r["ts_ms"] - T0, r["symbol"]): r["price"] for r in await rows(rt, "SELECT * FROM price_ticks")}
    assert stored == {(0, "BTC"): 100.0, (1, "BTC"): 102.0, (2, "BTC"): 103.0, (2, "ETH"): 4000.0}
    latest = {r["symbol"]: (r["price"], r["ts_ms"] - T0) for r in await rows(rt, "SELECT * FROM price_latest")}
    assert latest == {"BTC": (103.0, 2), "ETH": (4000.0, 2)}


async def test_new_ticks_after_stored_ones_move_the_latest_price_per_symbol(rt):
    """A feed's next batch, newer than everything stored (two sources of one symbol among them): every
    tick stored, each symbol's latest the greatest (ts_ms, price) whatever its source."""
    await ingest(rt, *REGISTER)
    await ingest(rt, f.tick("BTC", 100.0, 0), f.tick("ETH", 4000.0, 0))
    report = await ingest(rt, f.tick("BTC", 101.0, 1), f.tick("ETH", 4001.0, 1), f.tick("BTC", 99.0, 3, source="b"),
                          f.tick("BTC", 98.0, 3), f.tick("ETH", 3990.0, 2, source="b"))
    assert (report.accepted, report.duplicates) == (5, 0)
    assert len(await rows(rt, "SELECT * FROM price_ticks")) == 7
    latest = {r["symbol"]: (r["price"], r["ts_ms"] - T0) for r in await rows(rt, "SELECT * FROM price_latest")}
    assert latest == {"BTC": (99.0, 3), "ETH": (3990.0, 2)}
    again = await ingest(rt, f.tick("BTC", 101.0, 1), f.tick("BTC", 98.0, 3))
    assert (again.accepted, again.duplicates) == (0, 2)


async def test_ticks_stored_by_a_concurrent_writer_are_duplicates_not_errors(rt):
    """Two writers store the same new ticks at once: neither finds them stored beforehand; the second
    one's COPY waits on the first one's keys and, once those commit, meets them: its batch is stored
    again through the natural-key check (nothing twice, no error, nothing rejected)."""
    await ingest(rt, *REGISTER)
    ticks = [f.tick("BTC", 100.0, 0), f.tick("BTC", 101.0, 1), f.tick("ETH", 4000.0, 0)]

    async def store(conn) -> int:
        async with conn.transaction():
            return await insert_ticks(conn, ticks)

    async with rt.pool.connection() as first, rt.pool.connection() as second:
        async with first.transaction():
            assert await insert_ticks(first, ticks) == 3
            late = asyncio.create_task(store(second))
            async with rt.pool.connection() as watcher:
                for _ in range(500):  # until the second writer waits on the first one's keys
                    cur = await watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                                (second.info.backend_pid,))
                    if (await cur.fetchone())["wait_event_type"] == "Lock":
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the second writer never waited on the first one")
        assert await late == 0
    assert len(await rows(rt, "SELECT * FROM price_ticks")) == 3
    latest = {r["symbol"]: (r["price"], r["ts_ms"] - T0) for r in await rows(rt, "SELECT * FROM price_latest")}
    assert latest == {"BTC": (101.0, 1), "ETH": (4000.0, 0)}


# ------------------------------------------------------------------------------------- market metadata

async def test_market_meta_registers_symbols_and_publishes(rt, redis_sync):
    ev = MarketMeta(provider="hyperliquid", ts_ms=T0, meta_and_asset_ctxs=META)
    report = await IngestService(rt).ingest_lines([json.dumps({"type": "market_meta", "provider": "hyperliquid",
                                                               "ts_ms": T0, "meta_and_asset_ctxs": META})],
                                                  source="test")
    assert report.accepted == 1 and ev.provider == "hyperliquid"
    assert {r["symbol"] for r in await rows(rt, "SELECT symbol FROM symbols")} == {
        "BTC", "ETH", "SOL", "DOGE", "MATIC", "kPEPE", "HYPE"}
    (btc,) = await rows(rt, "SELECT * FROM market_assets WHERE symbol = 'BTC'")
    assert (btc["sz_decimals"], btc["max_leverage"], btc["margin_table_id"], btc["ts_ms"]) == (5, 40.0, 56, T0)
    (matic,) = await rows(rt, "SELECT * FROM market_assets WHERE symbol = 'MATIC'")
    assert matic["is_delisted"] is True
    (ctx,) = await rows(rt, "SELECT * FROM market_asset_ctx WHERE symbol = 'BTC'")
    assert (ctx["funding"], ctx["open_interest"], ctx["mark_px"], ctx["impact_pxs"], ctx["premium"]) == (
        0.0000125, 30426.48138, 111524.0, [111521.0, 111524.0], 0.0002870226)
    asset_key, ctx_key = rt.keys.market_asset("hyperliquid", "BTC"), rt.keys.market_ctx("hyperliquid", "BTC")
    assert_key(redis_sync, asset_key, "string")
    assert_key(redis_sync, ctx_key, "string")
    assert asset_key.ttl_ms == ttl_class_ms(rt, "long") and ctx_key.ttl_ms == ttl_class_ms(rt, "medium")
    assert json.loads(redis_sync.get(asset_key.name))["max_leverage"] == 40.0
    assert json.loads(redis_sync.get(ctx_key.name))["oracle_px"] == 111489.0
    # an older response never overwrites a newer one; the same response again is a duplicate
    older = json.loads(json.dumps(META))
    older[1][0]["markPx"] = "1.0"
    report = await ingest(rt, MarketMeta(provider="hyperliquid", ts_ms=T0 - 1000, meta_and_asset_ctxs=older),
                          MarketMeta(provider="hyperliquid", ts_ms=T0, meta_and_asset_ctxs=META))
    assert report.duplicates == 2
    assert (await rows(rt, "SELECT mark_px FROM market_asset_ctx WHERE symbol = 'BTC'"))[0]["mark_px"] == 111524.0


# ------------------------------------------------------------------------------------- fills

async def test_fills_write_trades_positions_and_equity_in_one_go(rt, redis_sync):
    await ingest(rt, *REGISTER, f.tick("BTC", 104.0))
    report = await ingest(rt, f.fill("buy", 100, 2, 1, fee=1.0, leverage=10, confidence=0.7,
                                     exit_plan={"stop_loss": 90}),
                          f.fill("sell", 110, 1, 2, fee=0.5, crossed=True))
    assert report.accepted == 2
    (trade,) = await rows(rt, "SELECT * FROM trades")
    assert (trade["origin"], trade["quantity"], trade["realized_gross_pnl"], trade["realized_net_pnl"],
            trade["leverage"], trade["confidence"], trade["exit_plan"], trade["exit_crossed"]) == (
        "fills", 1.0, 10.0, 9.0, 10.0, 0.7, {"stop_loss": 90}, True)
    (pos,) = await rows(rt, "SELECT * FROM positions")
    assert (pos["status"], pos["side"], pos["quantity"], pos["commission"], pos["entry_oid"]) == (
        "open", "long", 1.0, 0.5, 10)
    snaps = await rows(rt, "SELECT ts_ms, equity_usd, realized_pnl, unrealized_pnl FROM account_equity_snapshots"
                           " ORDER BY ts_ms")
    assert [(s["ts_ms"], s["equity_usd"]) for s in snaps] == [(T0 + 1, 9999.0), (T0 + 2, 10018.5)]
    # positions hash: mark-to-market at price_latest
    key = rt.keys.positions("m1")
    assert_key(redis_sync, key, "hash")
    assert key.ttl_ms == ttl_class_ms(rt, "positions")
    published = json.loads(redis_sync.hget(key.name, "BTC"))
    (open_row,) = await rows(rt, "SELECT * FROM positions WHERE status = 'open'")
    assert published == json.loads(json.dumps(position_json(open_row, 104.0)))
    assert (published["current_price"], published["unrealized_pnl"], published["margin"]) == (104.0, 4.0, 10.4)
    # trades: recent list (nof1 JSON), stream entry, guard
    recent = rt.keys.trades_recent("m1")
    assert_key(redis_sync, recent, "list")
    assert [json.loads(x) for x in redis_sync.lrange(recent.name, 0, -1)] == [json.loads(json.dumps(trade_json(trade)))]
    stream = rt.keys.trades_stream()
    assert_key(redis_sync, stream, "stream")
    (_, fields), = redis_sync.xrange(stream.name)
    assert {k.decode(): v.decode() for k, v in fields.items()} == {
        "op": "add", "id": trade["id"], "model_id": "m1", "symbol": "BTC", "side": "long",
        "realized_net_pnl": "9.0", "exit_time": repr((T0 + 2) / 1000)}
    guard = rt.keys.ingest_trade(trade["id"])
    assert_key(redis_sync, guard, "string")
    assert redis_sync.get(guard.name) == b"seen" and guard.ttl_ms == 86_400_000
    # closing removes the field, the trade is pushed, the replay changes nothing
    await ingest(rt, f.fill("sell", 120, 1, 3))
    assert redis_sync.exists(key.name) == 0
    assert redis_sync.llen(recent.name) == 2 and redis_sync.xlen(stream.name) == 2
    again = await ingest(rt, f.fill("buy", 100, 2, 1, fee=1.0, leverage=10, confidence=0.7,
                                    exit_plan={"stop_loss": 90}), f.fill("sell", 120, 1, 3))
    assert (again.accepted, again.duplicates) == (0, 2) and redis_sync.xlen(stream.name) == 2


async def test_a_late_fill_refolds_the_ledger(rt, redis_sync):
    await ingest(rt, *REGISTER)
    in_order = [f.fill("buy", 100, 1, 1), f.fill("sell", 110, 1, 2), f.fill("buy", 105, 1, 3), f.fill("sell", 120, 1, 4)]
    await ingest(rt, in_order[0], in_order[2], in_order[3])  # fill 2 arrives late
    (early,) = await rows(rt, "SELECT * FROM trades")
    assert (early["entry_tid"], early["exit_tid"], early["entry_price"]) == (1, 4, 102.5)
    await ingest(rt, in_order[1])
    trades = await rows(rt, "SELECT * FROM trades ORDER BY exit_ts_ms")
    assert [(t["entry_tid"], t["exit_tid"], t["entry_price"], t["exit_price"]) for t in trades] == [
        (1, 2, 100.0, 110.0), (3, 4, 105.0, 120.0)]
    assert await rows(rt, "SELECT * FROM positions WHERE status = 'open'") == []
    ops = [(e[b"op"], e[b"id"].decode()) for _, e in redis_sync.xrange(rt.keys.trades_stream().name)]
    assert (b"delete", early["id"]) in ops and ops[-1] != (b"delete", trades[-1]["id"])
    assert redis_sync.exists(rt.keys.ingest_trade(early["id"]).name) == 0
    assert redis_sync.llen(rt.keys.trades_recent("m1").name) == 2
    # the same fills in order, for another model, give the same rows
    await ingest(rt, *[f.fill(x.side, x.price, x.size, x.tid, model_id="m2") for x in in_order])
    other = await rows(rt, "SELECT * FROM trades WHERE model_id = 'm2' ORDER BY exit_ts_ms")
    strip = lambda t: {k: v for k, v in t.items() if k not in ("id", "model_id", "trade_id", "created_at")}  # noqa: E731
    assert [strip(t) for t in other] == [strip(t) for t in trades]
    eq = lambda m: rows(rt, "SELECT ts_ms, equity_usd, realized_pnl, unrealized_pnl FROM account_equity_snapshots"  # noqa: E731
                            " WHERE model_id = %s ORDER BY ts_ms", m)
    assert await eq("m1") == await eq("m2")


# ------------------------------------------------------------------------------------- trade events

async def test_trade_events_upsert_by_id_and_announce_changes(rt, redis_sync):
    await ingest(rt, *REGISTER)
    t = f.trade("m1_t1", realized_net_pnl=4.5, entry_tid=236046654097081, exit_plan={"profit_target": 2.2})
    assert (await ingest(rt, t, t)).accepted == 1
    (row,) = await rows(rt, "SELECT * FROM trades")
    assert (row["origin"], row["entry_tid"], row["exit_plan"], row["entry_ts_ms"]) == (
        "event", 236046654097081, {"profit_target": 2.2}, T0)
    assert trade_json(row)["entry_time"] == T0 / 1000
    changed = f.trade("m1_t1", realized_net_pnl=5.0, entry_tid=236046654097081, exit_plan={"profit_target": 2.2})
    assert (await ingest(rt, changed)).accepted == 1
    ops = [e[b"op"] for _, e in redis_sync.xrange(rt.keys.trades_stream().name)]
    assert ops == [b"add", b"update"]
    assert json.loads(redis_sync.lindex(rt.keys.trades_recent("m1").name, 0))["realized_net_pnl"] == 5.0


# ------------------------------------------------------------------------------------- positions

async def test_positions_open_adjust_close(rt, redis_sync):
    await ingest(rt, *REGISTER, f.tick("ETH", 3900.0))
    p = f.position("p1", symbol="ETH", side="short", entry_price=3860.0, quantity=6.21, leverage=20.0,
                   confidence=0.63, commission=1.5, entry_oid=204612596778,
                   exit_plan={"stop_loss": 3957.79}, metadata={"risk_usd": 600, "closed_pnl": -10.79})
    assert (await ingest(rt, p)).accepted == 1
    key = rt.keys.positions("m1")
    assert_key(redis_sync, key, "hash")
    pub = json.loads(redis_sync.hget(key.name, "ETH"))
    assert (pub["quantity"], pub["current_price"], pub["risk_usd"], pub["closed_pnl"], pub["entry_oid"]) == (
        -6.21, 3900.0, 600, -10.79, 204612596778)
    assert pub["unrealized_pnl"] == pytest.approx((3900.0 - 3860.0) * -6.21)
    adjusted = f.position("p1", symbol="ETH", side="short", entry_price=3860.0, quantity=3.0, leverage=20.0)
    assert (await ingest(rt, adjusted, adjusted)).accepted == 1
    assert json.loads(redis_sync.hget(key.name, "ETH"))["quantity"] == -3.0
    report = await ingest(rt, f.close("p1", exit_price=3800.0, dt=5000, commission=0.5))
    assert report.accepted == 1
    (pos,) = await rows(rt, "SELECT * FROM positions")
    assert (pos["status"], pos["exit_price"], pos["exit_ts_ms"]) == ("closed", 3800.0, T0 + 5000)
    assert redis_sync.exists(key.name) == 0  # the field is removed (the hash had only it)
    (trade,) = await rows(rt, "SELECT * FROM trades")
    assert (trade["origin"], trade["side"], trade["quantity"], trade["realized_gross_pnl"],
            trade["total_commission_dollars"]) == ("position", "short", -3.0, 180.0, 0.5)
    assert json.loads(redis_sync.lindex(rt.keys.trades_recent("m1").name, 0))["id"] == trade["id"]
    # a closed position stays closed; a second close is a duplicate
    again = await ingest(rt, adjusted, f.close("p1", exit_price=1.0))
    assert (again.accepted, again.duplicates) == (0, 2)


async def test_a_close_that_arrives_first_waits_for_its_position(rt, redis_sync):
    await ingest(rt, *REGISTER)
    assert (await ingest(rt, f.close("p9", exit_price=120.0))).accepted == 1
    assert await rows(rt, "SELECT * FROM trades") == []
    await ingest(rt, f.position("p9", entry_price=100.0, quantity=1.0))
    (pos,) = await rows(rt, "SELECT status FROM positions")
    assert pos["status"] == "closed"
    (trade,) = await rows(rt, "SELECT realized_gross_pnl FROM trades")
    assert trade["realized_gross_pnl"] == 20.0
    assert redis_sync.exists(rt.keys.positions("m1").name) == 0


# ------------------------------------------------------------------------------------- equity

async def test_equity_snapshots_and_fill_milliseconds(rt):
    await ingest(rt, *REGISTER)
    report = await ingest(rt, f.snapshot(dt=0, equity=10_100.0, realized_pnl=100.0), f.snapshot(dt=7, equity=9_000.0))
    assert report.accepted == 2
    assert (await ingest(rt, f.snapshot(dt=0, equity=10_100.0, realized_pnl=100.0))).duplicates == 1
    await ingest(rt, f.fill("buy", 100, 1, 7, dt=7, fee=1.0))  # the fills own T0+7 from now on
    await ingest(rt, f.snapshot(dt=7, equity=1.0))
    snaps = {r["ts_ms"]: (r["equity_usd"], r["realized_pnl"]) for r in await rows(
        rt, "SELECT * FROM account_equity_snapshots")}
    assert snaps == {T0: (10_100.0, 100.0), T0 + 7: (9_999.0, -1.0)}


# ------------------------------------------------------------------------------------- conversations

async def test_messages_append_to_a_trimmed_window(rt, redis_sync):
    rt.config.root.ingest.conversation_window = 3
    await ingest(rt, *REGISTER)
    msgs = [f.message(role=r, content=f"c{i}", dt=i) for i, r in enumerate(["system", "user", "assistant", "user"])]
    assert (await ingest(rt, *msgs, msgs[0])).accepted == 4
    assert len(await rows(rt, "SELECT * FROM conversation_messages")) == 4
    key = rt.keys.conversations("m1")
    assert_key(redis_sync, key, "list")
    assert key.ttl_ms == ttl_class_ms(rt, "long")
    assert [json.loads(x) for x in redis_sync.lrange(key.name, 0, -1)] == [
        {"role": r, "content": f"c{i}", "timestamp": (T0 + i) / 1000} for i, r in
        [(1, "user"), (2, "assistant"), (3, "user")]]
    await ingest(rt, f.message(role="assistant", content="c4", dt=4))
    assert json.loads(redis_sync.lindex(key.name, -1))["content"] == "c4" and redis_sync.llen(key.name) == 3


async def test_decision_cycles(rt, redis_sync):
    await ingest(rt, *REGISTER)
    decisions = [{"signal": "long", "symbol": "BTC", "confidence": 0.7, "leverage": 10, "why": "trend"},
                 {"signal": "hold", "symbol": "ETH"}]
    report = await ingest(rt, f.cycle(n=1, dt=0), f.cycle(n=2, decisions=decisions, dt=180_000,
                                                          prompt_digest="sha256:ab", cot_trace="..."))
    assert report.accepted == 2
    (row,) = await rows(rt, "SELECT * FROM decision_cycles WHERE cycle_number = 2")
    assert row["decisions"] == decisions and row["prompt_digest"] == "sha256:ab" and row["success"] is True
    key = rt.keys.decision_last("m1")
    assert_key(redis_sync, key, "string")
    last = json.loads(redis_sync.get(key.name))
    assert (last["cycle_number"], last["decisions"], last["executed_at"]) == (2, decisions, (T0 + 180_000) / 1000)
    assert (await ingest(rt, f.cycle(n=2, decisions=decisions, dt=180_000, prompt_digest="sha256:ab",
                                     cot_trace="..."))).duplicates == 1


# ------------------------------------------------------------------------------------- traders

async def test_trader_state_mirrors_to_a_hash(rt, redis_sync):
    await ingest(rt, *REGISTER)
    pause = datetime(2025, 10, 26, 12, 0, tzinfo=timezone.utc)
    report = await ingest(rt, f.trader_state(allocation_pct=45.0, cooldown={"after_loss": "15m"},
                                             risk_guards={"max_positions": 3}, pause_until=pause))
    assert report.accepted == 1
    (row,) = await rows(rt, "SELECT * FROM trader_state")
    assert (row["allocation_pct"], row["cooldown"], row["risk_guards"], row["pause_until"]) == (
        45.0, {"after_loss": "15m"}, {"max_positions": 3}, pause)
    key = rt.keys.trader_state("m1")
    assert_key(redis_sync, key, "hash")
    assert {k.decode(): v.decode() for k, v in redis_sync.hgetall(key.name).items()} == {
        "trader_id": "m1", "exchange_provider": "sim", "market_provider": "hyperliquid", "allocation_pct": "45.0",
        "cooldown": '{"after_loss":"15m"}', "risk_guards": '{"max_positions":3}',
        "pause_until": "2025-10-26T12:00:00+00:00"}
    # absent fields keep their value, null clears, unknown providers are refused naming the trader
    report = await ingest(rt, f.trader_state(pause_until=None), f.trader_state("m2", exchange_provider="binance"))
    assert (report.accepted, report.rejected) == (1, 1)
    assert "trader 'm2' names an unknown exchange provider" in report.rejections[0].reason
    (row,) = await rows(rt, "SELECT * FROM trader_state")
    assert row["pause_until"] is None and row["allocation_pct"] == 45.0
    assert redis_sync.hget(key.name, "pause_until") is None


# ------------------------------------------------------------------------------------- simulator

async def test_sim_orders_and_balances(rt, redis_sync):
    await ingest(rt, *REGISTER)
    report = await ingest(rt, f.sim_order(oid=1, dt=0), f.sim_order(oid=1, dt=5, status="filled", filled_size=1.0),
                          f.sim_order(oid=2, dt=3, side="sell", order_type="market"), f.sim_balance(total=9_000.0, dt=5))
    assert report.accepted == 3 and report.duplicates == 1
    orders = await rows(rt, "SELECT oid, status, filled_size FROM sim_orders ORDER BY oid")
    assert [(o["oid"], o["status"]) for o in orders] == [(1, "filled"), (2, "open")]
    key = rt.keys.sim_orders("m1")
    assert_key(redis_sync, key, "list")
    assert [json.loads(x)["oid"] for x in redis_sync.lrange(key.name, 0, -1)] == [2, 1]  # oldest first by ts
    bal = rt.keys.sim_balances("m1")
    assert_key(redis_sync, bal, "hash")
    assert json.loads(redis_sync.hget(bal.name, "USD")) == {"total": 9_000.0, "available": 9_000.0, "ts_ms": T0 + 5}
    # an older state never replaces a newer one
    assert (await ingest(rt, f.sim_order(oid=1, dt=1), f.sim_balance(total=1.0, dt=1))).duplicates == 2
    assert (await rows(rt, "SELECT status FROM sim_orders WHERE oid = 1"))[0]["status"] == "filled"


# ------------------------------------------------------------------------------------- robustness

async def test_rejections_go_to_dead_letters_once_and_valid_neighbours_are_stored(rt):
    await ingest(rt, *REGISTER)
    lines = [json.dumps({"type": "price_tick", "symbol": "BTC", "price": 100.0, "ts_ms": T0}),
             json.dumps({"type": "price_tick", "symbol": "BTC", "price": -1, "ts_ms": T0 + 1}),
             "", "garbage",
             json.dumps({"type": "price_tick", "symbol": "BTC", "price": 101.0, "ts_ms": T0 + 2})]
    service = IngestService(rt)
    report = await service.ingest_lines(lines, source="feed.jsonl")
    assert (report.accepted, report.rejected) == (2, 2)
    assert [(r.line, r.field) for r in report.rejections] == [(2, "price"), (4, None)]
    again = await service.ingest_lines(lines, source="feed.jsonl")
    assert (again.duplicates, again.rejected) == (2, 2)
    dead = await rows(rt, "SELECT source, line_no, event_type, field, reason, raw FROM ingest_dead_letters ORDER BY id")
    assert [(d["source"], d["line_no"], d["event_type"], d["field"]) for d in dead] == [
        ("feed.jsonl", 2, "price_tick", "price"), ("feed.jsonl", 4, None, None)]
    assert dead[0]["reason"] == "price=-1: must be a number > 0" and dead[1]["raw"] == "garbage"


async def test_a_database_refusal_rejects_only_its_event(rt):
    await ingest(rt, *REGISTER)
    # a constraint no validator knows about (this test's own database): the event it refuses is isolated
    async with rt.pool.connection() as conn:
        await conn.execute("ALTER TABLE price_ticks ADD CONSTRAINT test_no_42 CHECK (price <> 42)")
    report = await ingest(rt, f.tick("BTC", 1.0), f.tick("BTC", 42.0, dt=1), f.tick("BTC", 2.0, dt=2))
    assert (report.accepted, report.rejected) == (2, 1)
    (refused,) = report.rejections
    assert (refused.event_type, refused.where) == ("price_tick", "event 2")
    assert refused.reason.startswith("refused by the database") and "test_no_42" in refused.reason
    assert len(await rows(rt, "SELECT * FROM price_ticks")) == 2
    assert len(await rows(rt, "SELECT * FROM ingest_dead_letters")) == 1


async def test_redis_failure_never_fails_the_truth(rt):
    from dataclasses import replace

    from redis.asyncio import Redis

    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        rt_down = replace(rt, redis=broken)
        report = await ingest(rt_down, *REGISTER, f.tick("BTC"), f.fill("buy", 1, 1, 1), f.message())
        assert report.accepted == 7
        assert len(await rows(rt, "SELECT * FROM fills")) == 1
        errors = {s.labels["pipeline"]: s.value for m in rt.metrics.registry.collect() for s in m.samples
                  if s.name == "nof0_redis_write_errors_total"}
        assert errors["prices"] >= 1 and errors["trades"] >= 1 and errors["conversations"] >= 1
    finally:
        await broken.aclose()


async def test_on_committed_learns_changed_types_and_cannot_break_ingest(rt):
    seen: list[set[str]] = []

    async def listener(types: set[str]) -> None:
        seen.append(types)

    async def broken(types: set[str]) -> None:
        raise RuntimeError("listener bug")

    service = IngestService(rt)
    service.on_committed += [broken, listener]
    await service.ingest([*REGISTER, f.tick("BTC")])
    await service.ingest([f.tick("BTC")])  # nothing changed: nobody is called
    await service.ingest([f.fill("buy", 1, 1, 1)])
    assert seen == [{"model", "symbol", "price_tick"}, {"fill"}]


async def test_a_live_stream_flushes_a_partial_batch_when_the_producer_pauses(rt):
    import asyncio

    service = IngestService(rt, batch_size=1000, linger_s=0.05)
    first_batch_committed = asyncio.Event()

    async def on_commit(types: set[str]) -> None:
        first_batch_committed.set()

    service.on_committed.append(on_commit)

    async def feed():
        yield json.dumps({"type": "model", "id": "m1"})
        yield json.dumps({"type": "symbol", "symbol": "BTC"}).encode()
        await first_batch_committed.wait()  # quiet until the two lines above are stored
        yield json.dumps({"type": "price_tick", "symbol": "BTC", "price": 1.0, "ts_ms": T0})

    report = await asyncio.wait_for(service.ingest_lines(feed(), source="live"), timeout=60)
    assert (report.accepted, report.rejected) == (3, 0)
