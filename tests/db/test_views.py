"""The three materialized views: real definitions, concurrent refresh on empty and populated data."""

from __future__ import annotations

import threading

import psycopg
import pytest


def _seed(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO models (id, display_name) VALUES ('m1','M1'), ('m2','M2')")
    conn.execute("INSERT INTO accounts (model_id, starting_capital_usd) VALUES ('m1', 10000), ('m2', 5000)")
    conn.execute("INSERT INTO price_latest (symbol, price, ts_ms) VALUES ('BTC', 100000, 1), ('ETH', 4000, 1)")
    # m1: equity 10000 -> 10500 -> 10290 -> 11000
    for ts, eq in [(1000, 10000), (2000, 10500), (3000, 10290), (4000, 11000)]:
        conn.execute("INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('m1', %s, %s)",
                     (ts, eq))
    conn.execute("INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('m2', 1000, 4000)")
    for i, pnl in enumerate([100.0, -40.0, 250.0, -10.0]):
        conn.execute("INSERT INTO trades (id, model_id, symbol, side, realized_net_pnl, entry_ts_ms, exit_ts_ms)"
                     " VALUES (%s, 'm1', 'BTC', 'long', %s, 1, 2)", (f"t{i}", pnl))
    conn.execute("INSERT INTO decision_cycles (model_id, cycle_number) VALUES ('m1', 1), ('m1', 2)")


def test_refresh_on_empty_database(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("SELECT refresh_views_nof0()")
        assert conn.execute("SELECT count(*) FROM v_leaderboard").fetchone()[0] == 0


def test_leaderboard_computed_from_facts(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        _seed(conn)
        conn.execute("SELECT refresh_views_nof0()")
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT model_id, equity, return_pct, sharpe, num_trades, num_wins, num_losses, win_dollars, lose_dollars"
            " FROM v_leaderboard")}
    eq, ret, sharpe, n, w, l, wd, ld = rows["m1"]
    assert (eq, n, w, l, wd, ld) == (11000, 4, 2, 2, 350, -50)
    assert ret == pytest.approx(10.0)
    r = [10500 / 10000 - 1, 10290 / 10500 - 1, 11000 / 10290 - 1]
    mean = sum(r) / 3
    sd = (sum((x - mean) ** 2 for x in r) / 2) ** 0.5
    assert sharpe == pytest.approx(mean / sd)
    assert rows["m2"][:2] == (4000, pytest.approx(-20.0))
    assert rows["m2"][2:] == (0, 0, 0, 0, 0, 0)


def test_since_inception_and_prices_views(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        _seed(conn)
        conn.execute("SELECT refresh_views_nof0()")
        si = {r[0]: r[1:] for r in conn.execute(
            "SELECT model_id, nav_since_inception, num_invocations, first_ts_ms, num_snapshots FROM v_since_inception")}
        prices = dict(conn.execute("SELECT symbol, price FROM v_crypto_prices_latest").fetchall())
    assert si["m1"] == (10000, 2, 1000, 4)
    assert si["m2"] == (5000, 0, 1000, 1)
    assert prices == {"BTC": 100000, "ETH": 4000}


def test_concurrent_refresh_with_data_while_reading(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        _seed(conn)
        conn.execute("SELECT refresh_views_nof0()")
    errors: list[BaseException] = []
    seen: list[int] = []

    def refresh():
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as c:
                for _ in range(5):
                    c.execute("SELECT refresh_views_nof0()")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def read():
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as c:
                for _ in range(20):
                    seen.append(c.execute("SELECT count(*) FROM v_leaderboard").fetchone()[0])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (refresh, refresh, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert set(seen) == {2}  # readers never saw an empty or partial view


def test_extreme_equities_do_not_break_the_refresh(pg_dsn):
    """A vanishing equity followed by a huge one must not overflow the return computation."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO models (id, display_name) VALUES ('m', 'M')")
        for ts, eq in [(1, 1e-300), (2, 1e15), (3, -5.0), (4, 100.0), (5, 110.0), (6, 99.0)]:
            conn.execute("INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('m', %s, %s)",
                         (ts, eq))
        conn.execute("SELECT refresh_views_nof0()")
        sharpe = conn.execute("SELECT sharpe FROM v_leaderboard WHERE model_id = 'm'").fetchone()[0]
    # only returns after an equity of at least one cent: not after 1e-300, not after -5
    r = [-5.0 / 1e15 - 1, 110 / 100 - 1, 99 / 110 - 1]
    mean = sum(r) / 3
    sd = (sum((x - mean) ** 2 for x in r) / 2) ** 0.5
    assert sharpe == pytest.approx(mean / sd)
