"""``nof0 import`` on malformed nof1 files: a bad entry is rejected where it is, the entries around it are
imported, a file that is no capture stops the import (review of issue 3, finding 8)."""

from __future__ import annotations

import json
import shutil

import pytest

from nof0.importer.snapshot import SnapshotError, import_snapshot, snapshot_events
from tests.conftest import FIXTURES


async def _rows(rt, sql: str) -> list[dict]:
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql)
        return await cur.fetchall()


@pytest.fixture
def snapshot(tmp_path):
    """A copy of the captures to break."""
    d = tmp_path / "nof1"
    shutil.copytree(FIXTURES, d)
    return d


def _edit(path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


async def test_a_positions_value_that_is_a_list_is_rejected_on_its_own(rt, snapshot):
    def break_it(doc):
        doc["accountTotals"][1]["positions"] = [1, 2]
    _edit(snapshot / "positions.json", break_it)
    report = await import_snapshot(rt, snapshot)
    assert report.rejected == 1
    (r,) = report.rejections
    assert r.where == "positions.json accountTotals[1].positions" and "got list" in r.reason
    expected = json.loads((FIXTURES / "positions.json").read_text())["accountTotals"]
    stored = await _rows(rt, "SELECT model_id FROM positions")
    assert len(stored) == sum(len(a["positions"]) for i, a in enumerate(expected) if i != 1)
    assert len(await _rows(rt, "SELECT * FROM trades")) == 230  # the other files are untouched


async def test_non_finite_and_huge_numbers_are_rejected_naming_file_path_and_field(rt, snapshot):
    text = (snapshot / "trades.json").read_text()
    trades = json.loads(text)["trades"]
    # NaN and Infinity as Python's json writes them, and a number beyond the double range
    trades[3]["entry_time"] = float("nan")
    trades[7]["exit_price"] = float("inf")
    trades[12]["exit_time"] = "HUGE"
    raw = json.dumps({"trades": trades, "serverTime": json.loads(text)["serverTime"]}).replace('"HUGE"', "1e400")
    (snapshot / "trades.json").write_text(raw)
    report = await import_snapshot(rt, snapshot)
    found = {(r.where, r.field, r.value) for r in report.rejections}
    assert found == {("trades.json trades[3]", "entry_time", "NaN"), ("trades.json trades[7]", "exit_price", "Infinity"),
                     ("trades.json trades[12]", "exit_time", "1e400")}
    assert all("finite" in r.reason for r in report.rejections)
    assert len(await _rows(rt, "SELECT * FROM trades")) == 227


async def test_a_row_s_own_type_key_does_not_change_the_event(rt, snapshot):
    def break_it(doc):
        doc["trades"][0]["type"] = "model"
    _edit(snapshot / "trades.json", break_it)
    report = await import_snapshot(rt, snapshot)
    assert report.rejected == 0
    assert len(await _rows(rt, "SELECT * FROM trades")) == 230


async def test_entries_of_the_wrong_kind_are_rejected_where_they_are(rt, snapshot):
    _edit(snapshot / "trades.json", lambda d: d["trades"].insert(5, ["not", "a", "trade"]))
    _edit(snapshot / "conversations.json", lambda d: d["conversations"][0].update(messages="hello"))
    _edit(snapshot / "crypto-prices.json", lambda d: d["prices"].update(BTC=111000))
    report = await import_snapshot(rt, snapshot)
    assert {r.where for r in report.rejections} == {
        "trades.json trades[5]", "conversations.json conversations[0].messages", "crypto-prices.json prices.BTC"}
    assert str(next(r for r in report.rejections if r.where.startswith("trades"))).startswith(
        "trades.json trades[5] (trade): expected an object, got list")
    assert len(await _rows(rt, "SELECT * FROM trades")) == 230
    dead = await _rows(rt, "SELECT source, line_no FROM ingest_dead_letters ORDER BY source")
    assert ("import:nof1/trades.json", 6) in {(d["source"], d["line_no"]) for d in dead}


def test_a_file_that_is_no_capture_stops_the_import(snapshot):
    (snapshot / "trades.json").write_text(json.dumps({"trades": {"not": "a list"}}))
    with pytest.raises(SnapshotError, match=r"trades\.json: trades: expected a list, got dict"):
        snapshot_events(snapshot)
    (snapshot / "trades.json").write_text("[" * 100_000)
    with pytest.raises(SnapshotError, match="cannot read JSON"):
        snapshot_events(snapshot)
