"""On generated data, the leaderboard numbers agree everywhere: v_leaderboard, the ``nof0:leaderboard``
sorted set, ``nof0:leaderboard:cache`` and the payload builder the API uses; and they are the numbers a
user expects from the facts. Since-inception curves mirror the equity snapshots."""

from __future__ import annotations

import json
import statistics

import psycopg
import pytest

from nof0.analytics import repository as repo
from nof0.analytics.payloads import leaderboard_payload
from nof0.analytics.publish import rebuild_leaderboard, rebuild_since_inception
from nof0.jobs.views import refresh_views
from tests.analytics.seed import T0_MS, add_equity, seed_arena

FIELDS = ("equity", "return_pct", "sharpe", "num_trades", "num_wins", "num_losses", "win_dollars", "lose_dollars")


async def view_rows(rt) -> list[dict]:
    async with rt.pool.connection() as conn, conn.transaction():
        return await repo.list_leaderboard(conn)


def expected_entry(arena, model_id: str) -> dict:
    """The leaderboard numbers computed here from the generated facts, independently of SQL."""
    capital = arena.starting_capital[model_id]
    points = arena.equity.get(model_id, [])
    equity = points[-1][1] if points else capital
    returns = [b / a - 1 for (_, a), (_, b) in zip(points, points[1:])]
    sharpe = statistics.mean(returns) / statistics.stdev(returns) if len(returns) >= 2 else 0
    nets = [t["realized_net_pnl"] for t in arena.trades.get(model_id, [])]
    return {
        "equity": equity,
        "return_pct": (equity / capital - 1) * 100,
        "sharpe": sharpe,
        "num_trades": len(nets),
        "num_wins": sum(1 for n in nets if n > 0),
        "num_losses": sum(1 for n in nets if n < 0),
        "win_dollars": sum(n for n in nets if n > 0),
        "lose_dollars": sum(n for n in nets if n < 0),
    }


async def test_view_sorted_set_cache_and_payload_agree(rt, pg_dsn, redis_sync):
    arena = seed_arena(pg_dsn, n_models=6, trades_per_model=30)
    await refresh_views(rt)
    result = await rebuild_leaderboard(rt)
    assert result.models == len(arena.models) and result.redis_error is None

    rows = await view_rows(rt)
    view = {r["model_id"]: r for r in rows}
    assert view.keys() == set(arena.models)
    for model_id in arena.models:
        expected = expected_entry(arena, model_id)
        for f in FIELDS:
            assert view[model_id][f] == pytest.approx(expected[f], rel=1e-9, abs=1e-9), (model_id, f)
        assert view[model_id]["lose_dollars"] <= 0

    board = rt.keys.leaderboard()
    assert redis_sync.type(board.name) == b"zset"
    assert 0 < redis_sync.pttl(board.name) <= rt.config.ttl.millis("medium")
    scores = {m.decode(): s for m, s in redis_sync.zrange(board.name, 0, -1, withscores=True)}
    assert scores == {m: r["return_pct"] for m, r in view.items()}  # exact: same doubles
    ranked = [m.decode() for m in redis_sync.zrevrange(board.name, 0, -1)]
    assert ranked == [r["model_id"] for r in rows]  # the view's order, best return first

    cache = rt.keys.leaderboard_cache()
    assert redis_sync.type(cache.name) == b"string"
    assert 0 < redis_sync.pttl(cache.name) <= rt.config.ttl.millis("medium")
    body = json.loads(redis_sync.get(cache.name))
    assert body == leaderboard_payload(rows)  # what the API's Postgres fallback builds
    for entry in body["leaderboard"]:
        row = view[entry["id"]]
        assert all(entry[f] == row[f] for f in FIELDS)
        assert entry["return_pct"] == scores[entry["id"]]


async def test_members_that_left_are_removed(rt, pg_dsn, redis_sync):
    seed_arena(pg_dsn, n_models=3, trades_per_model=3)
    await refresh_views(rt)
    await rebuild_leaderboard(rt)
    board = rt.keys.leaderboard().name
    assert redis_sync.zcard(board) == 4
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("DELETE FROM models WHERE id IN ('model-0', 'idle')")
    await refresh_views(rt)
    await rebuild_leaderboard(rt)
    assert {m.decode() for m in redis_sync.zrange(board, 0, -1)} == {"model-1", "model-2"}
    assert [e["id"] for e in json.loads(redis_sync.get(rt.keys.leaderboard_cache().name))["leaderboard"]] == [
        r["model_id"] for r in await view_rows(rt)
    ]
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("DELETE FROM models")
    await refresh_views(rt)
    await rebuild_leaderboard(rt)
    assert redis_sync.exists(board) == 0
    assert json.loads(redis_sync.get(rt.keys.leaderboard_cache().name)) == {"leaderboard": []}


async def test_since_inception_curves_mirror_the_snapshots(rt, pg_dsn, redis_sync):
    arena = seed_arena(pg_dsn, n_models=3, trades_per_model=3)
    result = await rebuild_since_inception(rt, batch_models=2)  # several batches
    assert result.points == sum(len(p) for p in arena.equity.values()) and result.redis_error is None
    for model_id, points in arena.equity.items():
        key = rt.keys.since_inception(model_id)
        assert redis_sync.type(key.name) == b"list"
        assert 0 < redis_sync.pttl(key.name) <= rt.config.ttl.millis("long")
        values = [json.loads(v) for v in redis_sync.lrange(key.name, 0, -1)]
        assert values == [{"timestamp": ts / 1000, "value": eq} for ts, eq in points]
    assert redis_sync.exists(rt.keys.since_inception("idle").name) == 0  # no snapshot, no curve

    # a rebuild replaces the curve (no duplicated points) and drops a curve whose snapshots are gone
    add_equity_point = (T0_MS + 999 * 3_600_000, 1234.5)
    with psycopg.connect(pg_dsn) as conn:
        add_equity(conn, "model-0", [add_equity_point])
        conn.execute("DELETE FROM account_equity_snapshots WHERE model_id = 'model-1'")
    await rebuild_since_inception(rt)
    curve = [json.loads(v) for v in redis_sync.lrange(rt.keys.since_inception("model-0").name, 0, -1)]
    assert len(curve) == len(arena.equity["model-0"]) + 1
    assert curve[-1] == {"timestamp": add_equity_point[0] / 1000, "value": 1234.5}
    assert redis_sync.exists(rt.keys.since_inception("model-1").name) == 0


async def test_since_inception_values_carry_capital_and_inception(rt, pg_dsn):
    """The API's since-inception rows: each model's starting capital and inception date."""
    from nof0.analytics.payloads import since_inception_payload

    arena = seed_arena(pg_dsn, n_models=2, trades_per_model=2)
    await refresh_views(rt)
    async with rt.pool.connection() as conn, conn.transaction():
        rows = await repo.list_since_inception(conn)
    body = since_inception_payload(rows, server_time_ms=1)
    got = {e["model_id"]: e for e in body["sinceInceptionValues"]}
    assert got.keys() == set(arena.models)
    for model_id, capital in arena.starting_capital.items():
        assert got[model_id]["nav_since_inception"] == capital
        assert got[model_id]["inception_date"] == T0_MS / 1000
