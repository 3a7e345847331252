"""Done-when of issue 9 (market half): ``nof0 feed --provider hyperliquid``, its base_url pointed at the
local fake through the environment, fills price_ticks, price_latest, market_assets, market_asset_ctx and
their Redis keys with the fake's values, and keeps doing so after the fake drops the WebSocket."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import psycopg
import redis.asyncio as aioredis
from psycopg.rows import dict_row

from nof0.cache.keys import Keyspace
from nof0.config import TTLClasses
from tests.conftest import ETC
from tests.fakes.hyperliquid_market import fixture

SIX = ["BTC", "ETH", "SOL", "BNB", "DOGE", "XRP"]
NOF0 = Path(sys.executable).parent / "nof0"


class Process:
    """The command, its log lines (JSON on stderr) as events to wait on."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.logs: list[dict] = []
        self.changed = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for line in self.proc.stderr:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"event": line.decode(errors="replace").strip()}
            self.logs.append(entry)
            async with self.changed:
                self.changed.notify_all()

    async def until(self, check, timeout: float = 30.0) -> None:
        """Re-run the async ``check`` after each log line the command writes, until it holds."""

        async def loop():
            while not await check():
                async with self.changed:
                    await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


async def test_nof0_feed_fills_the_store_from_the_venue_and_survives_a_dropped_socket(
        fake, pg_dsn, test_servers, redis_prefix, tmp_path):
    etc = tmp_path / "etc"
    shutil.copytree(ETC.parent, etc)
    manifest = etc / "nof0.yaml"
    manifest.write_text(manifest.read_text().replace("prefix: nof0", f"prefix: {redis_prefix}"))
    env = {**os.environ, "NOF0_POSTGRES_DSN": pg_dsn, "NOF0_REDIS_URL": test_servers.redis_url,
           "NOF0_HYPERLIQUID_BASE_URL": fake.base_url, "NOF0_LOG_LEVEL": "debug"}
    proc = await asyncio.create_subprocess_exec(
        str(NOF0), "--config", str(manifest), "feed", "--provider", "hyperliquid", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    cmd = Process(proc)
    keys = Keyspace(TTLClasses(), prefix=redis_prefix)
    r = aioredis.Redis.from_url(test_servers.redis_url)
    db = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True, row_factory=dict_row)

    async def latest() -> dict[str, float]:
        rows = await (await db.execute("SELECT symbol, price FROM price_latest")).fetchall()
        return {row["symbol"]: row["price"] for row in rows}

    async def redis_price(symbol: str) -> float | None:
        raw = await r.get(keys.price_latest(symbol).name)
        return None if raw is None else json.loads(raw)["price"]

    try:
        await fake.wait_for(lambda: fake.subscriptions >= 1, timeout=60)
        frame = fixture("ws_all_mids.json")
        await fake.send_raw(json.dumps(frame), channel="allMids")
        first = {s: float(frame["data"]["mids"][s]) for s in SIX}

        async def first_frame_stored() -> bool:
            return await latest() == first and await redis_price("XRP") == first["XRP"]

        await cmd.until(first_frame_stored)
        ticks = await (await db.execute("SELECT symbol, price, source FROM price_ticks")).fetchall()
        assert {(t["symbol"], t["price"], t["source"]) for t in ticks} == {(s, p, "hyperliquid") for s, p in first.items()}
        assert "@142" not in {t["symbol"] for t in ticks}  # coins not configured stay out

        # metadata and contexts: the fake's metaAndAssetCtxs, polled at start
        meta, ctxs = fixture("meta_and_asset_ctxs.json")
        venue = {u["name"]: (u, c) for u, c in zip(meta["universe"], ctxs)}
        assets = await (await db.execute(
            "SELECT symbol, sz_decimals, max_leverage, margin_table_id FROM market_assets WHERE provider = 'hyperliquid'"
        )).fetchall()
        assert {a["symbol"]: (a["sz_decimals"], a["max_leverage"], a["margin_table_id"]) for a in assets} == {
            s: (venue[s][0]["szDecimals"], venue[s][0]["maxLeverage"], venue[s][0]["marginTableId"]) for s in SIX}
        rows = await (await db.execute(
            "SELECT symbol, funding, open_interest, mark_px, oracle_px, prev_day_px FROM market_asset_ctx"
            " WHERE provider = 'hyperliquid'")).fetchall()
        assert {c["symbol"]: (c["funding"], c["open_interest"], c["mark_px"], c["oracle_px"], c["prev_day_px"])
                for c in rows} == {s: tuple(float(venue[s][1][k]) for k in ("funding", "openInterest", "markPx",
                                                                             "oraclePx", "prevDayPx")) for s in SIX}
        for s in SIX:
            asset = json.loads(await r.get(keys.market_asset("hyperliquid", s).name))
            ctx = json.loads(await r.get(keys.market_ctx("hyperliquid", s).name))
            assert asset["sz_decimals"] == venue[s][0]["szDecimals"] and ctx["mark_px"] == float(venue[s][1]["markPx"])
        prices = json.loads(await r.get(keys.crypto_prices().name))
        assert {s: v["price"] for s, v in prices.items()} == first

        # the venue drops the socket: the feed reconnects, resubscribes, fills the gap by REST, goes on
        fake.mids.update({"BTC": "111450.0", "ETH": "3935.5"})  # what it misses while away
        await fake.drop()
        await fake.wait_for(lambda: fake.subscriptions >= 2 and len(fake.requests_of("allMids")) >= 1, timeout=60)

        async def gap_filled() -> bool:
            return (await latest())["ETH"] == 3935.5 and await redis_price("ETH") == 3935.5

        await cmd.until(gap_filled)
        await fake.push_mids({"BTC": "111502.0", "SOL": "194.1"})

        async def after_drop_stored() -> bool:
            now = await latest()
            return (now["BTC"], now["SOL"]) == (111502.0, 194.1) and await redis_price("BTC") == 111502.0

        await cmd.until(after_drop_stored)
        assert any(e.get("event") == "websocket lost; reconnecting" and e.get("reason") == "dropped" for e in cmd.logs)

        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(asyncio.gather(proc.stdout.read(), proc.wait()), 30)
        assert proc.returncode == 0
        text = out.decode()
        assert "nof0 feed: hyperliquid (hyperliquid)" in text and "hyperliquid: " in text and " ticks in " in text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        cmd.reader.cancel()
        await r.aclose()
        await db.close()
