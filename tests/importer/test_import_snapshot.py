"""``nof0 import``: a nof1 snapshot folder through the pipelines keeps every field, and twice is once."""

from __future__ import annotations

import json

from nof0.analytics.payloads import since_inception_entry
from nof0.analytics.repository import list_since_inception
from nof0.importer.snapshot import import_snapshot
from nof0.ingest.followup import refresh_after_ingest
from nof0.trades.payloads import trade_json
from tests.api.conftest import clock_rt  # noqa: F401 - fixture
from tests.conftest import FIXTURES


async def _rows(rt, sql: str) -> list[dict]:
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql)
        return await cur.fetchall()


async def test_trades_rebuild_field_for_field(rt):
    report = await import_snapshot(rt, FIXTURES)
    assert report.rejected == 0, [str(r) for r in report.rejections]
    expected = json.loads((FIXTURES / "trades.json").read_text())["trades"]
    rows = {r["id"]: trade_json(r) for r in await _rows(rt, "SELECT * FROM trades")}
    assert len(rows) == len(expected) == 230
    for t in expected:
        assert rows[t["id"]] == t


async def test_prices_and_since_inception_equal_the_files(rt, redis_sync):
    assert (await refresh_after_ingest(rt, await import_snapshot(rt, FIXTURES))).ok
    prices = json.loads((FIXTURES / "crypto-prices.json").read_text())["prices"]
    latest = await _rows(rt, "SELECT symbol, price, ts_ms FROM price_latest")
    assert {r["symbol"]: {"symbol": r["symbol"], "price": r["price"], "timestamp": r["ts_ms"]} for r in latest} == prices
    assert json.loads(redis_sync.get(rt.keys.crypto_prices().name)) == prices
    si = json.loads((FIXTURES / "since-inception-values.json").read_text())["sinceInceptionValues"]
    async with rt.pool.connection() as conn, conn.transaction():
        rows = await list_since_inception(conn)
    assert [since_inception_entry(r) for r in rows] == si


async def test_every_file_lands(rt, redis_sync):
    await import_snapshot(rt, FIXTURES)
    positions = json.loads((FIXTURES / "positions.json").read_text())["accountTotals"]
    open_rows = await _rows(rt, "SELECT * FROM positions WHERE status = 'open'")
    assert len(open_rows) == sum(len(a["positions"]) for a in positions)
    btc = next(r for r in open_rows if r["model_id"] == "gpt-5" and r["symbol"] == "BTC")
    assert (btc["side"], btc["quantity"], btc["entry_oid"], btc["metadata"]) == (
        "short", 0.13, 204614807391, {"risk_usd": 300, "closed_pnl": -6.26})
    published = json.loads(redis_sync.hget(rt.keys.positions("gpt-5").name, "BTC"))
    assert published["quantity"] == -0.13 and published["current_price"] == 111317.5  # marked at the imported price
    board = json.loads((FIXTURES / "leaderboard.json").read_text())["leaderboard"]
    latest = {r["model_id"]: r["equity_usd"] for r in await _rows(
        rt, "SELECT DISTINCT ON (model_id) model_id, equity_usd FROM account_equity_snapshots ORDER BY model_id, ts_ms DESC")}
    assert {b["id"]: b["equity"] for b in board} == {m: latest[m] for m in (b["id"] for b in board)}
    convos = json.loads((FIXTURES / "conversations.json").read_text())["conversations"]
    for c in convos:
        stored = [json.loads(x) for x in redis_sync.lrange(rt.keys.conversations(c["model_id"]).name, 0, -1)]
        assert stored == c["messages"]


async def test_importing_twice_changes_nothing(rt, redis_sync):
    for ttl_class in ("short", "medium", "long", "positions"):  # keys compared by content: none may expire
        setattr(rt.config.root.ttl, ttl_class, 3600.0)
    first = await import_snapshot(rt, FIXTURES)
    tables = ["models", "symbols", "accounts", "price_ticks", "price_latest", "trades", "positions",
              "account_equity_snapshots", "conversations", "conversation_messages", "ingest_dead_letters"]
    before = {t: await _rows(rt, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    keys_before = _redis_state(redis_sync, rt.keys.prefix)
    second = await import_snapshot(rt, FIXTURES)
    assert first.accepted > 0 and second.accepted == 0
    assert second.duplicates == first.accepted + first.duplicates
    assert {t: await _rows(rt, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables} == before
    assert _redis_state(redis_sync, rt.keys.prefix) == keys_before


def _redis_state(r, prefix: str) -> dict:
    out = {}
    for key in sorted(r.scan_iter(match=f"{prefix}:*")):
        kind = r.type(key).decode()
        value = {"string": r.get, "list": lambda k: r.lrange(k, 0, -1), "hash": r.hgetall,
                 "stream": r.xrange}[kind](key)
        out[key] = (kind, value)
    return out


async def test_a_running_api_serves_an_import_at_once(clock_rt):
    """The API's cached (empty) trades response is dropped when the load commits, not after its TTL."""
    from tests.api.conftest import listening_client

    rt = clock_rt
    async with listening_client(rt) as (client, listener):
        assert (await client.get("/api/trades")).json()["trades"] == []
        assert (await refresh_after_ingest(rt, await import_snapshot(rt, FIXTURES))).ok
        await listener.caught_up()  # the clock stands still: the bytes this process held are dropped too
        assert len((await client.get("/api/trades")).json()["trades"]) == 230
