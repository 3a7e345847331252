"""The file source (design 5): each endpoint serves its nof1 snapshot file as it is, serverTime set."""

from __future__ import annotations

import json
import shutil

import pytest

from nof0.api.spec import SPECS
from tests.api.conftest import NOW_MS, client_for
from tests.conftest import FIXTURES

FILE_ENDPOINTS = ["trades", "crypto-prices", "since-inception-values", "leaderboard", "positions", "conversations"]


def _use_files(rt, folder, endpoints=tuple(SPECS)):
    rt.config.root.api.file_dir = str(folder)
    rt.config.root.api.data_sources = {name: "file" for name in endpoints}


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _without_time(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "serverTime"}


@pytest.mark.parametrize("endpoint", FILE_ENDPOINTS)
async def test_file_source_returns_the_fixture(clock_rt, endpoint):
    _use_files(clock_rt, FIXTURES)
    async with client_for(clock_rt) as c:
        r = await c.get(f"/api/{endpoint}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert _without_time(body) == _without_time(_fixture(SPECS[endpoint].file_name))
    if SPECS[endpoint].server_time:
        assert body["serverTime"] == NOW_MS
    else:
        assert "serverTime" not in body


async def test_file_source_analytics_from_per_model_files(clock_rt):
    _use_files(clock_rt, FIXTURES)
    expected = _fixture("analytics-grok-4.json")
    async with client_for(clock_rt) as c:
        one = await c.get("/api/analytics/grok-4")
        every = await c.get("/api/analytics")
        unknown = await c.get("/api/analytics/gpt-6")
    assert one.status_code == 200 and _without_time(one.json()) == expected
    assert one.json()["serverTime"] == NOW_MS
    assert _without_time(every.json()) == expected  # the folder holds one model's analytics
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


async def test_file_source_rereads_a_changed_file(clock_rt, tmp_path):
    shutil.copy(FIXTURES / "crypto-prices.json", tmp_path / "crypto-prices.json")
    _use_files(clock_rt, tmp_path, ["crypto-prices"])
    async with client_for(clock_rt) as c:
        first = await c.get("/api/crypto-prices")
        again = await c.get("/api/crypto-prices")
        assert first.headers["etag"] == again.headers["etag"] and first.content == again.content
        clock_rt.clock.advance(clock_rt.keys.ttl_ms("short"))  # the endpoint's TTL class later
        later = (await c.get("/api/crypto-prices")).json()
        assert later["serverTime"] == NOW_MS + clock_rt.keys.ttl_ms("short")
        assert later["prices"] == first.json()["prices"]
        data = _fixture("crypto-prices.json")
        data["prices"]["BTC"]["price"] = 1.5
        (tmp_path / "crypto-prices.json").write_text(json.dumps(data) + "\n")
        changed = await c.get("/api/crypto-prices")
    assert changed.json()["prices"]["BTC"]["price"] == 1.5
    assert changed.headers["etag"] != first.headers["etag"]


async def test_missing_or_broken_file_answers_503(clock_rt, tmp_path):
    (tmp_path / "trades.json").write_text("{not json")
    _use_files(clock_rt, tmp_path, ["trades", "positions"])
    async with client_for(clock_rt) as c:
        broken = await c.get("/api/trades")
        missing = await c.get("/api/positions")
        from_db = await c.get("/api/crypto-prices")  # not flipped: still the db source
    assert broken.status_code == 503 and "not valid JSON" in broken.json()["detail"]
    assert missing.status_code == 503 and "positions.json not found" in missing.json()["detail"]
    assert from_db.status_code == 200 and from_db.json()["prices"] == {}
