"""``nof0 order`` as an operator runs it, on a sim trader with no feed in the process: the mark is the
latest stored price. The trade, fees, balance and equity are the rules' (computed by hand below, with
etc/exchange.yaml's sim: taker 0.045 %, slippage 2 bps)."""

from __future__ import annotations

import json

import psycopg
import pytest

from nof0.config import load_config
from tests.conftest import ETC
from tests.ingest.factories import T0
from tests.ingest.test_ingest_commands import etc_dir, nof0  # noqa: F401 - the fixture and the runner

TRADER = "trader_aggressive_short"
MARKET = next(t.market_provider for t in load_config(ETC).manager.traders if t.id == TRADER)


def _ingest(etc_dir, pg_dsn, redis_url, tmp_path, *events) -> None:
    feed = tmp_path / "seed.jsonl"
    feed.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    run = nof0(etc_dir, pg_dsn, redis_url, "ingest", str(feed))
    assert run.returncode == 0, run.stderr.decode()


def _rows(dsn: str, sql: str) -> list[dict]:
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(sql).fetchall()


META = {"type": "market_meta", "provider": MARKET, "ts_ms": T0, "meta_and_asset_ctxs": [
    {"universe": [{"name": "ETH", "szDecimals": 4, "maxLeverage": 25}]},
    [{"funding": "0.0", "openInterest": "1000.0", "prevDayPx": "3900.0", "dayNtlVlm": "1000000.0",
      "oraclePx": "4000.0", "markPx": "4000.0"}]]}


def test_order_opens_and_closes_a_sim_position_at_the_stored_price(tmp_path, etc_dir, pg_dsn, test_servers,  # noqa: F811
                                                                  redis_sync, redis_prefix):
    url = test_servers.redis_url
    _ingest(etc_dir, pg_dsn, url, tmp_path, META,
            {"type": "price_tick", "symbol": "ETH", "price": 4000.0, "ts_ms": T0})
    run = nof0(etc_dir, pg_dsn, url, "order", TRADER, "ETH", "long", "0.1", "--leverage", "10")
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()
    # 4000 x 1.0002 = 4000.8; fee 400.08 x 0.00045 = 0.180036; margin 400.08 / 10 = 40.008
    assert f"mark ETH 4000 (latest stored price, {MARKET})" in out
    assert f"{TRADER} ETH: filled, oid 1, 0.1 at 4000.8, fee 0.180036 USD" in out
    assert "equity 9999.739964 USD, available 9959.811964, margin used 40.008000" in out  # mark 4000: -0.08 unrealized
    assert "ETH long 0.1 at 4000.8, 10x, margin 40.008000" in out

    _ingest(etc_dir, pg_dsn, url, tmp_path, {"type": "price_tick", "symbol": "ETH", "price": 4100.0, "ts_ms": T0 + 1})
    run = nof0(etc_dir, pg_dsn, url, "order", TRADER, "ETH", "--close")
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()
    # 4100 x 0.9998 = 4099.18 -> 4099.2; fee 409.92 x 0.00045 = 0.184464
    assert f"{TRADER} ETH: filled, oid 4, 0.1 at 4099.2, fee 0.184464 USD" in out
    # gross (4099.2 - 4000.8) x 0.1 = 9.84; net 9.84 - 0.180036 - 0.184464 = 9.4755
    assert "equity 10009.475500 USD, available 10009.475500, margin used 0.000000" in out

    (trade,) = _rows(pg_dsn, f"SELECT * FROM trades WHERE model_id = '{TRADER}'")
    assert (trade["side"], trade["quantity"], trade["entry_price"], trade["exit_price"], trade["leverage"]) == (
        "long", 0.1, 4000.8, 4099.2, 10.0)
    assert trade["realized_gross_pnl"] == pytest.approx(9.84, abs=1e-9)
    assert trade["entry_commission_dollars"] == pytest.approx(0.180036, abs=1e-12)
    assert trade["exit_commission_dollars"] == pytest.approx(0.184464, abs=1e-12)
    assert trade["realized_net_pnl"] == pytest.approx(9.4755, abs=1e-9)
    (bal,) = _rows(pg_dsn, f"SELECT total, available FROM sim_balances WHERE trader_id = '{TRADER}'")
    assert bal["total"] == pytest.approx(10_009.4755, abs=1e-9) and bal["available"] == bal["total"]
    (eq,) = _rows(pg_dsn, f"SELECT equity_usd FROM account_equity_snapshots WHERE model_id = '{TRADER}'"
                          " ORDER BY ts_ms DESC LIMIT 1")
    assert eq["equity_usd"] == pytest.approx(10_009.4755, abs=1e-9)
    assert _rows(pg_dsn, f"SELECT status FROM positions WHERE model_id = '{TRADER}'") == [{"status": "closed"}]
    assert redis_sync.hlen(f"{redis_prefix}:positions:{TRADER}") == 0
    usd = json.loads(redis_sync.hget(f"{redis_prefix}:sim:balances:{TRADER}", "USD"))
    assert usd["total"] == pytest.approx(10_009.4755, abs=1e-9)


def test_order_explains_a_refusal_and_bad_usage(tmp_path, etc_dir, pg_dsn, test_servers):  # noqa: F811
    url = test_servers.redis_url
    _ingest(etc_dir, pg_dsn, url, tmp_path, META, {"type": "price_tick", "symbol": "ETH", "price": 4000.0, "ts_ms": T0})
    run = nof0(etc_dir, pg_dsn, url, "order", TRADER, "ETH", "buy", "0.001")
    assert run.returncode == 1 and "rejected (oid 1): Order must have minimum value of $10" in run.stdout.decode()
    run = nof0(etc_dir, pg_dsn, url, "order", TRADER, "ETH", "--close")
    assert run.returncode == 1 and "no open ETH position to close" in run.stdout.decode()
    run = nof0(etc_dir, pg_dsn, url, "order", "nobody", "ETH", "buy", "1")
    assert run.returncode == 2 and "unknown trader 'nobody'" in run.stderr.decode()
    run = nof0(etc_dir, pg_dsn, url, "order", TRADER, "ETH", "buy")
    assert run.returncode == 2 and "give a side" in run.stderr.decode()
