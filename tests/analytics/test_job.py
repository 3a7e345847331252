"""The analytics job on real Postgres and Redis: computed from the facts, persisted, published with the
right types and TTLs, in the design's order, under the per-model lock."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
import threading
from datetime import datetime, timezone

import msgspec
import psycopg
import pytest
from redis.asyncio import Redis

from nof0.analytics import job as job_module
from nof0.analytics.job import run_analytics
from nof0.analytics.metrics import compute_model_analytics, trade_facts_from_nof1
from nof0.cache.guards import acquire_lock, release_lock
from nof0.kernel.clock import FixedClock
from nof0.runtime import Servers, open_runtime
from nof0.trades.payloads import trade_json
from tests.analytics.seed import T0_MS, add_equity, add_model, add_trades, make_trade, seed_arena
from tests.conftest import FIXTURES

NOW_MS = T0_MS + 40 * 3_600_000


@pytest.fixture
def clocked(rt):
    rt.clock = FixedClock(NOW_MS)
    return rt


def stored_trades(dsn: str, model_id: str) -> list[dict]:
    """The model's trades as nof1 JSON, read back from Postgres (the API's shape)."""
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute("SELECT * FROM trades WHERE model_id = %s", (model_id,)).fetchall()
    return [trade_json(r) for r in rows]


def analytics_rows(dsn: str) -> dict[str, dict]:
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
        return {r["model_id"]: r for r in conn.execute("SELECT * FROM model_analytics")}


def assert_same_numbers(actual: dict, expected: dict, path: str = "") -> None:
    assert actual.keys() == expected.keys(), path
    for k, v in expected.items():
        if isinstance(v, dict):
            assert_same_numbers(actual[k], v, f"{path}.{k}")
        elif isinstance(v, float):
            assert math.isclose(actual[k], v, rel_tol=1e-12, abs_tol=1e-9), (f"{path}.{k}", actual[k], v)
        else:
            assert actual[k] == v, (f"{path}.{k}", actual[k], v)


async def test_job_persists_and_publishes_every_model(clocked, pg_dsn, redis_sync):
    rt = clocked
    arena = seed_arena(pg_dsn)
    report = await run_analytics(rt)
    assert sorted(report.computed) == sorted(arena.models) and not report.skipped_locked and not report.failed
    assert report.published and report.trades == sum(len(t) for t in arena.trades.values())

    rows = analytics_rows(pg_dsn)
    assert rows.keys() == set(arena.models)
    for model_id in arena.models:
        row = rows[model_id]
        assert row["server_time_ms"] == NOW_MS
        assert row["updated_at"] == datetime.fromtimestamp(NOW_MS / 1000, tz=timezone.utc)
        # the same numbers as the single computation fed from the API's trade JSON
        trades = [trade_facts_from_nof1(t) for t in stored_trades(pg_dsn, model_id)]
        expected = compute_model_analytics(model_id, trades, now_s=NOW_MS / 1000)
        assert_same_numbers(row["payload"], expected)

        key = rt.keys.analytics(model_id)
        assert redis_sync.type(key.name) == b"string"
        assert 0 < redis_sync.pttl(key.name) <= rt.config.ttl.millis("long")
        assert json.loads(redis_sync.get(key.name)) == row["payload"]

    everyone = rt.keys.analytics_all()
    assert redis_sync.type(everyone.name) == b"string"
    assert 0 < redis_sync.pttl(everyone.name) <= rt.config.ttl.millis("long")
    body = json.loads(redis_sync.get(everyone.name))
    assert list(body) == ["analytics"]
    assert [a["model_id"] for a in body["analytics"]] == sorted(arena.models)
    assert {a["model_id"]: a for a in body["analytics"]} == {m: r["payload"] for m, r in rows.items()}


async def test_break_even_and_single_trade_models(clocked, pg_dsn):
    arena = seed_arena(pg_dsn, n_models=2, trades_per_model=10)
    await run_analytics(clocked)
    payloads = {m: r["payload"] for m, r in analytics_rows(pg_dsn).items()}
    full = payloads["model-0"]
    assert full["overall_trades_overview_table"]["total_trades"] == 10
    single = payloads["model-1"]  # the last model has one trade: every std is 0
    assert single["overall_trades_overview_table"]["total_trades"] == 1
    assert all(v == 0 for k, v in single["fee_pnl_moves_breakdown_table"].items() if k.startswith("std_"))
    idle = payloads["idle"]
    assert idle["last_trade_doc_id"] is None and idle["overall_trades_overview_table"]["total_trades"] == 0
    assert arena.trades["model-0"][0]["realized_net_pnl"] == 0.0  # counted with the losers, as documented
    losers = sum(1 for t in arena.trades["model-0"] if t["realized_net_pnl"] <= 0)
    assert full["winners_losers_breakdown_table"]["win_rate"] == pytest.approx((10 - losers) * 10)


async def test_the_capture_through_the_database_matches_nof1(clocked, pg_dsn):
    """The capture's trades stored in ``trades``: every model gets its tables, and grok-4's trade tables
    equal nof1's."""
    trades = json.loads((FIXTURES / "trades.json").read_text())["trades"]
    nof1 = json.loads((FIXTURES / "analytics-grok-4.json").read_text())["analytics"][0]
    columns = ("id", "model_id", "symbol", "side", "trade_type", "quantity", "leverage", "confidence",
               "entry_price", "exit_price", "realized_gross_pnl", "realized_net_pnl", "total_commission_dollars",
               "entry_commission_dollars", "exit_commission_dollars", "exit_plan")
    rows = [{c: t[c] for c in columns} | {"entry_ts_ms": round(t["entry_time"] * 1000),
                                          "exit_ts_ms": round(t["exit_time"] * 1000)} for t in trades]
    models = sorted({t["model_id"] for t in trades})
    with psycopg.connect(pg_dsn) as conn:
        for m in models:
            add_model(conn, m)
        add_trades(conn, rows)
    report = await run_analytics(clocked)
    assert report.computed == models and len(models) == 6
    stored = analytics_rows(pg_dsn)
    for m in models:
        assert stored[m]["payload"]["overall_trades_overview_table"]["total_trades"] == sum(
            1 for t in trades if t["model_id"] == m)
    ours = stored["grok-4"]["payload"]
    for table in ("fee_pnl_moves_breakdown_table", "winners_losers_breakdown_table", "longs_shorts_breakdown_table"):
        for field, value in nof1[table].items():
            if field == "std_taker_fee":  # documented mismatch (docs/analytics.md)
                continue
            assert math.isclose(ours[table][field], value, rel_tol=1e-9, abs_tol=1e-12), (table, field)
    assert ours["last_trade_doc_id"] == nof1["last_trade_doc_id"]
    # times are stored in ms: the exit time comes back to the millisecond nof1 published
    assert ours["last_trade_exit_time"] == nof1["last_trade_exit_time"]


async def test_decisions_positions_and_conversations_feed_their_tables(clocked, pg_dsn):
    h = 3_600_000
    with psycopg.connect(pg_dsn) as conn:
        add_model(conn, "m")
        add_equity(conn, "m", [(T0_MS, 10_000.0), (T0_MS + 2 * h, 20_000.0)])
        add_trades(conn, [{
            "id": "m_1", "model_id": "m", "symbol": "BTC", "side": "long", "quantity": 0.1, "entry_price": 100_000.0,
            "exit_price": 101_000.0, "entry_ts_ms": T0_MS + 3 * h, "exit_ts_ms": T0_MS + 4 * h,
            "realized_gross_pnl": 100.0, "realized_net_pnl": 98.0, "total_commission_dollars": 2.0,
            "exit_plan": {"stop_loss": 98_000.0, "profit_target": "not a number"},
        }])
        cycles = [
            (1, T0_MS, [{"signal": "long", "symbol": "BTC", "confidence": 0.8, "leverage": 10},
                        {"signal": "hold", "symbol": "ETH", "confidence": 0.5}]),
            (2, T0_MS + 2 * h, [{"signal": "close", "symbol": "BTC", "confidence": 0.6, "leverage": 1},
                                {"signal": "buy", "symbol": "ETH", "confidence": 0.5}]),  # invalid: skipped
            (3, T0_MS + 4 * h, [{"signal": "short", "symbol": "ETH", "confidence": 0.7, "leverage": 5}]),
            (4, T0_MS + h, None),  # a failed cycle: an invocation without decisions
        ]
        for n, ts, decisions in cycles:
            conn.execute(
                "INSERT INTO decision_cycles (model_id, cycle_number, decisions, executed_at) VALUES ('m', %s, %s, %s)",
                (n, None if decisions is None else json.dumps(decisions),
                 datetime.fromtimestamp(ts / 1000, tz=timezone.utc)),
            )
        # BTC long for the first hour, ETH short from 3 h on and still open
        conn.execute(
            "INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms, status,"
            " exit_ts_ms, exit_price) VALUES"
            " ('p1', 'm', 'BTC', 'long', 100000, 0.1, %s, 'closed', %s, 101000),"
            " ('p2', 'm', 'ETH', 'short', 4000, 1, %s, 'open', NULL, NULL)",
            (T0_MS - h, T0_MS + h, T0_MS + 3 * h),
        )
        conn.execute("INSERT INTO conversations (model_id, thread) VALUES ('m', 'main'), ('m', 'other')")
        conn.execute(
            "INSERT INTO conversation_messages (conversation_id, role, content, ts_ms)"
            " SELECT c.id, 'assistant', 'hello', t FROM conversations c, (VALUES (%s::bigint), (%s::bigint)) v(t)"
            " WHERE c.thread = 'main'",
            (T0_MS + h, T0_MS + 5 * h),
        )
        conn.execute(
            "INSERT INTO conversation_messages (conversation_id, role, content, ts_ms)"
            " SELECT id, 'user', 'older', %s FROM conversations WHERE thread = 'other'",
            (T0_MS + 2 * h,),
        )
    report = await run_analytics(clocked)
    assert report.invalid_decisions == 1 and report.decisions == 4
    a = analytics_rows(pg_dsn)["m"]["payload"]

    s = a["signals_breakdown_table"]
    assert (s["total_signals"], s["num_long_signals"], s["num_short_signals"], s["num_close_signals"],
            s["num_hold_signals"]) == (4, 1, 1, 1, 1)
    assert s["avg_leverage"] == pytest.approx((10 + 1 + 1 + 5) / 4)  # a hold without leverage counts as 1
    assert s["avg_confidence"] == pytest.approx((0.8 + 0.5 + 0.6 + 0.7) / 4)
    # window = first to last invocation (4 h) for BTC and ETH: BTC long 1 h then flat 3 h; ETH flat 3 h,
    # short 1 h (open: runs to now, clipped at the last invocation)
    assert (s["mins_long_combined"], s["mins_short_combined"], s["mins_flat_combined"]) == (60, 60, 360)
    assert s["pct_mins_flat_combined"] == pytest.approx(75)

    inv = a["invocation_breakdown_table"]
    assert inv["num_invocations"] == 4 and inv["avg_invocation_break_mins"] == 80  # breaks 60, 60, 120

    o = a["overall_trades_overview_table"]
    assert o["avg_convo_leverage"] == pytest.approx((10 + 5) / 2)  # entry signals only
    assert o["avg_size_of_trade_portfolio_pct"] == 0  # nof1 does not fill it, with equity snapshots or not
    assert o["avg_stop_loss_distance_pct"] == pytest.approx(2.0)
    assert o["avg_take_profit_distance_pct"] == 0  # a non-numeric level counts as absent

    assert a["last_convo_timestamp"] == (T0_MS + 5 * h) / 1000  # newest of both threads
    assert a["last_convo_doc_id"] == f"m_{(T0_MS + 5 * h) / 1000}"


async def test_a_model_held_by_another_worker_is_skipped(clocked, pg_dsn, redis_sync):
    rt = clocked
    seed_arena(pg_dsn, n_models=3, trades_per_model=5)
    key = rt.keys.lock("analytics.model-1")
    token = await acquire_lock(rt.redis, key)
    report = await run_analytics(rt)
    assert report.skipped_locked == ["model-1"]
    assert "model-1" not in analytics_rows(pg_dsn)
    assert redis_sync.exists(rt.keys.analytics("model-1").name) == 0
    assert redis_sync.get(key.name).decode() == token  # not released by the job: not its lock
    await release_lock(rt.redis, key, token)
    assert (await run_analytics(rt)).computed == ["idle", "model-0", "model-1", "model-2"]
    assert not [k for k in redis_sync.scan_iter(match=f"{rt.keys.prefix}:lock:*")]  # all released


async def test_two_concurrent_workers_never_compute_the_same_model(clocked, pg_dsn, monkeypatch):
    """Worker A is paused inside its computation; worker B starts meanwhile and must skip A's models."""
    seed_arena(pg_dsn, n_models=4, trades_per_model=5)
    computing = threading.Event()
    resume = threading.Event()
    seen: list[list[str]] = []
    real = job_module.compute_payloads

    def paused(facts, now_s):
        facts = list(facts)
        seen.append([f.model_id for f in facts])
        if len(seen) == 1:  # the first worker waits until the second has finished
            computing.set()
            assert resume.wait(30)
        return real(facts, now_s)

    monkeypatch.setattr(job_module, "compute_payloads", paused)
    first = asyncio.create_task(run_analytics(clocked))
    assert await asyncio.to_thread(computing.wait, 30)
    second = await run_analytics(clocked)
    resume.set()
    first_report = await first
    assert second.computed == [] and sorted(second.skipped_locked) == sorted(first_report.computed)
    assert len(seen) == 1  # the second worker computed nothing


async def test_an_older_computation_never_replaces_a_newer_one(clocked, pg_dsn):
    seed_arena(pg_dsn, n_models=1, trades_per_model=5)
    await run_analytics(clocked)
    clocked.clock.value = NOW_MS - 60_000  # a slow worker that read earlier finishes later
    await run_analytics(clocked)
    assert {r["server_time_ms"] for r in analytics_rows(pg_dsn).values()} == {NOW_MS}


async def test_redis_down_still_persists(clocked, pg_dsn):
    seed_arena(pg_dsn, n_models=2, trades_per_model=5)
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    rt = dataclasses.replace(clocked, redis=dead)
    try:
        report = await run_analytics(rt)
    finally:
        await dead.aclose()
    assert not report.published and report.redis_error
    assert sorted(report.computed) == ["idle", "model-0", "model-1"]
    assert analytics_rows(pg_dsn).keys() == {"idle", "model-0", "model-1"}
    assert rt.metrics.redis_write_errors.labels("analytics")._value.get() == 1


async def test_only_named_models_and_unknown_ones_reported(clocked, pg_dsn):
    seed_arena(pg_dsn, n_models=2, trades_per_model=5)
    report = await run_analytics(clocked, ["model-1", "nope"])
    assert report.computed == ["model-1"] and report.unknown == ["nope"]
    assert analytics_rows(pg_dsn).keys() == {"model-1"}


def leaderboard_trades(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT model_id, num_trades FROM v_leaderboard").fetchall())


async def test_job_publishes_after_the_upsert_and_the_refresh(clocked, pg_dsn, monkeypatch):
    """Design 4.1: Redis is written once the rows are upserted and the views refreshed (the refresh runs
    beside the statistics: the views read only the facts)."""
    seed_arena(pg_dsn, n_models=1, trades_per_model=5)
    events: list[str] = []
    real_refresh, real_publish = job_module.refresh_views, job_module.cache.publish_analytics

    async def refresh(rt):
        result = await real_refresh(rt)
        events.append("refreshed")
        return result

    async def publish(*args):
        events.append("publish:" + ",".join(sorted(analytics_rows(pg_dsn))) + f" trades {leaderboard_trades(pg_dsn)}")
        return await real_publish(*args)

    monkeypatch.setattr(job_module, "refresh_views", refresh)
    monkeypatch.setattr(job_module.cache, "publish_analytics", publish)
    await run_analytics(clocked)
    assert events == ["refreshed", "publish:idle,model-0 trades {'model-0': 1, 'idle': 0}"]


async def test_a_small_pool_refreshes_after_the_upsert(config, pg_dsn, monkeypatch):
    """With no connection to spare beside the statistics, the refresh runs after the upsert, then Redis."""
    config.root.postgres.pool_max = 3
    seed_arena(pg_dsn, n_models=1, trades_per_model=5)
    events: list[str] = []
    real_refresh, real_publish = job_module.refresh_views, job_module.cache.publish_analytics

    async def refresh(rt):
        events.append("refresh:" + ",".join(sorted(analytics_rows(pg_dsn))))
        return await real_refresh(rt)

    async def publish(*args):
        events.append("publish")
        return await real_publish(*args)

    monkeypatch.setattr(job_module, "refresh_views", refresh)
    monkeypatch.setattr(job_module.cache, "publish_analytics", publish)
    async with open_runtime(config, Servers(config.root.postgres.dsn, config.root.redis.url)) as rt:
        rt.clock = FixedClock(NOW_MS)
        report = await run_analytics(rt)
    assert events == ["refresh:idle,model-0", "publish"] and report.published


async def test_each_run_refreshes_the_views_with_the_facts_it_computed(clocked, pg_dsn):
    seed_arena(pg_dsn, n_models=2, trades_per_model=5)
    await run_analytics(clocked)
    assert leaderboard_trades(pg_dsn) == {"model-0": 5, "model-1": 1, "idle": 0}
    with psycopg.connect(pg_dsn) as conn:
        rng = random.Random(1)
        add_trades(conn, [make_trade(rng, "model-1", i) for i in range(1, 4)])
    await run_analytics(clocked)
    assert leaderboard_trades(pg_dsn) == {"model-0": 5, "model-1": 4, "idle": 0}
    assert analytics_rows(pg_dsn)["model-1"]["payload"]["overall_trades_overview_table"]["total_trades"] == 4


async def test_failed_statistics_stop_the_refresh_beside_them(clocked, pg_dsn, monkeypatch):
    """The statistics' error is the job's; the refresh started beside them is not left running."""
    seed_arena(pg_dsn, n_models=1, trades_per_model=5)
    refresh_started, refresh_stopped = asyncio.Event(), asyncio.Event()

    async def refresh(rt):
        refresh_started.set()
        try:
            await asyncio.sleep(60)
        finally:
            refresh_stopped.set()

    async def trade_stats(*args, **kwargs):
        await refresh_started.wait()
        raise RuntimeError("statistics failed")

    monkeypatch.setattr(job_module, "refresh_views", refresh)
    monkeypatch.setattr(job_module, "_trade_stats", trade_stats)
    with pytest.raises(RuntimeError, match="statistics failed"):
        await run_analytics(clocked)
    assert refresh_stopped.is_set()
    assert analytics_rows(pg_dsn) == {}


async def test_postgres_trade_stats_are_the_python_definitions_on_edge_cases(clocked, pg_dsn):
    """The job's trade statistics come from Postgres (``repository.list_trade_cells`` and
    ``list_trade_order_stats``): on awkward trades they equal ``metrics.trade_stats`` over the same trades."""
    import random

    from nof0.analytics.metrics import TradeFacts, trade_stats
    from tests.analytics.seed import make_trade

    rng = random.Random(3)
    rows = [make_trade(rng, "edge", i) for i in range(9)]  # odd count: a middle median
    rows += [make_trade(rng, "edge", 9, net=0.0), make_trade(rng, "edge", 10, net=0.0)]  # break-even: losers
    exit_ms = rows[0]["exit_ts_ms"]
    for i, trade_id in ((1, "edge_Z"), (2, "edge_b"), (3, "edge_a")):  # one exit time: the greatest id wins
        rows[i] |= {"id": trade_id, "exit_ts_ms": exit_ms + 10**9}     # in code point order ('Z' < 'b')
    plans = [{"stop_loss": "95"}, {"stop_loss": True}, {"stop_loss": 0}, {"stop_loss": -3, "profit_target": 1e308},
             {"profit_target": None}, {"stop_loss": 1e-300}]
    for row, plan in zip(rows[4:], plans):
        row["exit_plan"] = plan
    rows[5]["entry_price"] = 0.0  # no distance without an entry price
    single = [make_trade(rng, "one", 0)]  # one trade: every std 0
    with psycopg.connect(pg_dsn) as conn:
        for m in ("edge", "one", "empty"):
            add_model(conn, m)
        add_trades(conn, rows + single)
        open_trade = make_trade(rng, "edge", 99) | {"exit_ts_ms": None}  # not a closed round trip: left out
        add_trades(conn, [open_trade])

    def facts(r: dict) -> TradeFacts:
        plan = {k: v for k, v in r["exit_plan"].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1e300}
        return TradeFacts(
            id=r["id"], model_id=r["model_id"], symbol=r["symbol"], side=r["side"], quantity=r["quantity"],
            entry_price=r["entry_price"], exit_price=r["exit_price"], entry_time_s=r["entry_ts_ms"] / 1000,
            exit_time_s=r["exit_ts_ms"] / 1000, realized_gross_pnl=r["realized_gross_pnl"],
            realized_net_pnl=r["realized_net_pnl"], total_commission_dollars=r["total_commission_dollars"],
            entry_commission_dollars=r["entry_commission_dollars"], exit_commission_dollars=r["exit_commission_dollars"],
            leverage=r["leverage"], confidence=r["confidence"], exit_plan=plan)

    # every_model: the cells pass without its model filter (these are all the models) gives the same
    for every_model in (False, True):
        stats = await job_module._trade_stats(clocked, ["edge", "one", "empty"], every_model=every_model)
        assert set(stats) == {"edge", "one"}  # a model without closed trades has no row (its stats are all 0)
        for model_id, trades in (("edge", rows), ("one", single)):
            expected = msgspec.to_builtins(trade_stats([facts(r) for r in trades]))
            actual = msgspec.to_builtins(stats[model_id])
            assert_same_numbers(actual, expected)
        assert stats["edge"].last_trade_id == "edge_b" and stats["edge"].losers.count == 2 + sum(
            r["realized_net_pnl"] < 0 for r in rows)
        assert stats["edge"].avg_stop_loss_distance_pct > 0 and stats["one"].std_net_pnl == 0


async def test_trade_stats_of_some_models_leave_the_others_out(clocked, pg_dsn):
    """The medians are shared out among connections: each asked model gets its own, no other appears."""
    seed_arena(pg_dsn, n_models=5, trades_per_model=7)
    every = await job_module._trade_stats(clocked, [f"model-{i}" for i in range(5)], every_model=True)
    some = await job_module._trade_stats(clocked, ["model-3", "model-0", "model-4"])
    assert list(some) == ["model-3", "model-0", "model-4"]
    for m in some:  # the same numbers (a plan filtering by model may read the rows in another order)
        assert_same_numbers(msgspec.to_builtins(some[m]), msgspec.to_builtins(every[m]))
    assert len({s.median_holding_period for s in every.values()}) == 5  # each model's own


def test_exit_plan_distance_is_the_flat_definition_on_any_json(pg_dsn):
    """The distance's nested CASEs (each test cheaper than the next) give what one CASE of all the tests
    gave, whatever the plan holds: no key, a key of an array, non-numbers, out-of-range numbers, NULL."""
    from nof0.analytics.repository import _distance

    def flat(key: str) -> str:  # the definition before issue 13's second pass
        return (f"CASE WHEN jsonb_typeof(exit_plan -> '{key}') = 'number'"
                f" AND (exit_plan ->> '{key}')::numeric > 0 AND (exit_plan ->> '{key}')::numeric <= 1e300"
                f" AND entry_price > 0 THEN abs((exit_plan ->> '{key}')::float8 - entry_price) / entry_price * 100 END")

    plans = ['{}', '{"stop_loss": 95}', '{"stop_loss": "95"}', '{"stop_loss": true}', '{"stop_loss": 0}',
             '{"stop_loss": -3}', '{"stop_loss": 1e301}', '{"stop_loss": 1e-300}', '{"stop_loss": null}',
             '{"stop_loss": {"a": 1}}', '["stop_loss"]', '"stop_loss"', '5', 'null', None]
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            f"SELECT p, e, {_distance('stop_loss')}, {flat('stop_loss')}"
            "  FROM unnest(%s::jsonb[]) AS p(exit_plan), unnest(%s::float8[]) AS e(entry_price)",
            (plans, [100.0, 0.0, -1.0, None])).fetchall()
    assert len(rows) == len(plans) * 4
    assert all(new == old for _, _, new, old in rows if new is not None or old is not None)
    assert all((new is None) == (old is None) for _, _, new, old in rows)
    assert sum(new is not None for _, _, new, _ in rows) == 2  # 95 and 1e-300 over an entry price of 100
