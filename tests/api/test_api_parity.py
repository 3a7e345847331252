"""``nof0 parity DIR``: per-field differences between the file and db answers; exit code on facts."""

from __future__ import annotations

import asyncio

from nof0.api.parity import diff_bodies, format_report, run_parity
from nof0.cli import main
from tests.api.conftest import config_with_prefix
from tests.api.seed import load, seed_positions_file, seed_snapshot
from tests.conftest import FIXTURES


async def _seed_all(rt) -> None:
    await seed_snapshot(rt)
    await seed_positions_file(rt, load("positions.json")["accountTotals"])


async def test_parity_passes_on_the_seeded_capture(clock_rt):
    await _seed_all(clock_rt)
    reports = {r.label: r for r in await run_parity(clock_rt, FIXTURES)}
    assert set(reports) == {"crypto-prices", "positions", "trades", "since-inception-values", "leaderboard",
                            "analytics/grok-4", "conversations"}
    for name in ("trades", "crypto-prices", "since-inception-values", "conversations"):
        assert reports[name].differences == [] and reports[name].error is None, name
    assert reports["trades"].records == 230
    # positions: the sample's marks differ from the db's (marked at the latest price), nothing else
    assert [d for d in reports["positions"].differences if not d.derived] == []
    assert {d.path.rsplit(".", 1)[1] for d in reports["positions"].differences} <= {
        "current_price", "unrealized_pnl", "margin"}
    assert reports["leaderboard"].differences and not reports["leaderboard"].failing
    assert not any(r.failing for r in reports.values())
    text = "\n".join(format_report(list(reports.values()), FIXTURES))
    assert text.endswith("result: ok")
    assert "leaderboard" in text and "(derived: reported, not failing)" in text


async def test_parity_names_each_differing_field(clock_rt):
    await _seed_all(clock_rt)
    async with clock_rt.pool.connection() as conn, conn.transaction():
        await conn.execute("UPDATE trades SET exit_price = 1.5 WHERE id = 'gpt-5_c1a99ee5-bb08-49f0-a5ad-ef916bda243e'")
        await conn.execute("DELETE FROM price_latest WHERE symbol = 'DOGE'")
    reports = {r.label: r for r in await run_parity(clock_rt, FIXTURES)}
    [trade_diff] = reports["trades"].differences
    assert trade_diff.path == "trades[id=gpt-5_c1a99ee5-bb08-49f0-a5ad-ef916bda243e].exit_price"
    assert (trade_diff.file, trade_diff.db) == (2.6463, 1.5)
    assert [d.path for d in reports["crypto-prices"].differences] == ["prices.DOGE"]
    lines = format_report(list(reports.values()), FIXTURES)
    assert any("exit_price: file 2.6463 | db 1.5" in line for line in lines)
    assert lines[-1] == "result: FAILED (crypto-prices, trades)"


def test_diff_matches_records_by_identity_not_position():
    a = {"trades": [{"id": "x", "v": 1}, {"id": "y", "v": 2}], "serverTime": 1}
    b = {"trades": [{"id": "y", "v": 2}, {"id": "x", "v": 1}], "serverTime": 2}
    assert diff_bodies("trades", a, b) == []
    b["trades"].append({"id": "z", "v": 3})
    b["trades"][0]["v"] = True  # a bool is not the number 1 or 2
    paths = [d.path for d in diff_bodies("trades", a, b)]
    assert paths == ["trades[id=y].v", "trades[id=z]"]


async def test_cli_exit_codes(clock_rt, config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NOF0_POSTGRES_DSN", config.root.postgres.dsn)
    monkeypatch.setenv("NOF0_REDIS_URL", config.root.redis.url)
    monkeypatch.setattr("nof0.cli.configure_logging", lambda *a, **k: None)  # keep the test's log setup
    manifest = config_with_prefix(tmp_path, clock_rt.keys.prefix)
    empty = tmp_path / "empty"
    empty.mkdir()
    await seed_snapshot(clock_rt)  # no positions: a fact endpoint differs
    code = await asyncio.to_thread(main, ["--config", str(manifest), "parity", str(FIXTURES)])
    out = capsys.readouterr().out
    assert code == 1 and "positions" in out and "MISMATCH" in out and "result: FAILED (positions)" in out
    await seed_positions_file(clock_rt, load("positions.json")["accountTotals"])
    assert await asyncio.to_thread(main, ["--config", str(manifest), "parity", str(FIXTURES)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("result: ok")
    assert await asyncio.to_thread(main, ["--config", str(manifest), "parity", str(empty)]) == 1
    assert await asyncio.to_thread(main, ["--config", str(manifest), "parity", str(tmp_path / "nope")]) == 2
