"""Done-when of the API issue: after ``nof0 import`` of the capture, the fact endpoints equal the files
field for field, and ``nof0 parity`` passes (derived endpoints reported, not failing)."""

from __future__ import annotations

import asyncio
import json

import yaml

from nof0.analytics.job import run_analytics
from nof0.api.parity import run_parity
from nof0.api.read_path import LOCAL_FRESH_MS
from nof0.cli import main
from nof0.importer.snapshot import import_snapshot
from tests.api.conftest import NOW_MS, config_with_prefix
from tests.conftest import FIXTURES


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


async def test_imported_capture_equals_the_files(clock_rt, client):
    report = await import_snapshot(clock_rt, FIXTURES)
    assert report.rejected == 0
    trades = (await client.get("/api/trades")).json()
    assert trades["serverTime"] == NOW_MS
    assert {t["id"]: t for t in trades["trades"]} == {t["id"]: t for t in _fixture("trades.json")["trades"]}
    assert len(trades["trades"]) == 230
    prices = (await client.get("/api/crypto-prices")).json()
    assert prices == {**_fixture("crypto-prices.json"), "serverTime": NOW_MS}
    since = (await client.get("/api/since-inception-values")).json()
    assert since == {**_fixture("since-inception-values.json"), "serverTime": NOW_MS}  # order and microseconds
    conversations = (await client.get("/api/conversations")).json()["conversations"]
    assert {c["model_id"]: c["messages"] for c in conversations} == {
        c["model_id"]: c["messages"] for c in _fixture("conversations.json")["conversations"]}

    reports = {r.label: r for r in await run_parity(clock_rt, FIXTURES)}
    assert not any(r.failing for r in reports.values())
    for name in ("trades", "crypto-prices", "since-inception-values", "conversations"):
        assert reports[name].differences == [], name
    assert all(d.derived for d in reports["positions"].differences)  # marks only


async def test_nof0_import_then_nof0_parity_exits_0(clock_rt, config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NOF0_POSTGRES_DSN", config.root.postgres.dsn)
    monkeypatch.setenv("NOF0_REDIS_URL", config.root.redis.url)
    monkeypatch.setattr("nof0.cli.configure_logging", lambda *a, **k: None)  # keep the test's log setup
    manifest = str(config_with_prefix(tmp_path, clock_rt.keys.prefix))
    assert await asyncio.to_thread(main, ["--config", manifest, "import", str(FIXTURES)]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["--config", manifest, "parity", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    assert "trades                       ok (230 records)" in out and out.rstrip().endswith("result: ok")


async def test_nof0_import_traders_sync_then_parity_exits_0(clock_rt, config, tmp_path, monkeypatch, capsys):
    """The README's sequence: synced traders are models the folder does not have; reported, not failing."""
    monkeypatch.setenv("NOF0_POSTGRES_DSN", config.root.postgres.dsn)
    monkeypatch.setenv("NOF0_REDIS_URL", config.root.redis.url)
    monkeypatch.setattr("nof0.cli.configure_logging", lambda *a, **k: None)  # keep the test's log setup
    manifest = str(config_with_prefix(tmp_path, clock_rt.keys.prefix))
    traders = sorted(t["id"] for t in yaml.safe_load((tmp_path / "etc" / "manager.yaml").read_text())["traders"])
    assert await asyncio.to_thread(main, ["--config", manifest, "import", str(FIXTURES)]) == 0
    assert await asyncio.to_thread(main, ["--config", manifest, "traders", "sync"]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["--config", manifest, "parity", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    assert "since-inception-values       differs" in out and "(model only in the database, not failing)" in out
    assert f"models only in the database (not in {FIXTURES}), not failing: {', '.join(traders)}" in out
    assert out.rstrip().endswith("result: ok")


async def test_a_missing_record_of_a_model_the_folder_names_still_fails(clock_rt):
    await import_snapshot(clock_rt, FIXTURES)
    async with clock_rt.pool.connection() as conn, conn.transaction():  # a second trade of a known model
        await conn.execute(
            "INSERT INTO trades (id, model_id, symbol, side, trade_type, quantity, entry_price, entry_ts_ms,"
            " exit_price, exit_ts_ms) VALUES ('grok-4_extra', 'grok-4', 'BTC', 'long', 'long', 1, 100, 1, 101, 2)")
    reports = {r.label: r for r in await run_parity(clock_rt, FIXTURES)}
    assert reports["trades"].failing
    assert [d.path for d in reports["trades"].differences] == ["trades[id=grok-4_extra]"]


async def test_after_import_and_analytics_every_model_has_its_tables(clock_rt, client, redis_sync):
    await import_snapshot(clock_rt, FIXTURES)
    await run_analytics(clock_rt)
    models = [v["model_id"] for v in _fixture("since-inception-values.json")["sinceInceptionValues"]]
    every = (await client.get("/api/analytics")).json()["analytics"]
    assert sorted(a["model_id"] for a in every) == sorted(models)
    grok = (await client.get("/api/analytics/grok-4")).json()["analytics"]
    assert [a["model_id"] for a in grok] == ["grok-4"]
    expected = _fixture("analytics-grok-4.json")["analytics"][0]
    assert set(grok[0]) == set(expected)  # every table of nof1's ModelAnalytics
    assert grok[0]["winners_losers_breakdown_table"]["win_rate"] == expected["winners_losers_breakdown_table"]["win_rate"]
    # and from Postgres alone, with the analytics keys and cached responses gone
    redis_sync.delete(*redis_sync.scan_iter(match=f"{clock_rt.keys.prefix}:*"))
    clock_rt.clock.advance(LOCAL_FRESH_MS)
    again = (await client.get("/api/analytics/grok-4")).json()["analytics"]
    assert again == grok
