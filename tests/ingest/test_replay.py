"""Replay safety (design 4.2, issue "Replay safety"): a generated log of about 100k events of every type,
ingested once, again, and shuffled with duplicates into a second store, leaves the same state.

Compared: every table's rows without the columns that record when or by which insert a row was
written (serial ids, ``*_at`` stamps, ``run_id``), and every Redis key's type and value without its
remaining TTL. The trades stream is a change feed, so it is compared by what it announces: the
latest entry per trade (a replay in order adds no entry at all).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg
import pytest
import redis as redis_lib

from nof0.db.dsn import with_database
from nof0.ingest.service import IngestService
from nof0.runtime import Servers, open_runtime
from tests.conftest import _admin, _new_database, make_config
from tests.ingest.eventlog import generate

# table -> columns left out of the comparison (write bookkeeping, not facts)
TABLES: dict[str, set[str]] = {
    "models": {"created_at"},
    "symbols": {"created_at"},
    "accounts": {"created_at", "updated_at"},
    "price_ticks": {"id", "ingested_at"},
    "price_latest": {"updated_at"},
    "fills": {"ingested_at"},
    "fill_books": {"updated_at"},
    "trades": {"created_at"},
    "positions": {"updated_at"},
    "position_closes": {"received_at"},
    "account_equity_snapshots": {"id", "run_id", "created_at"},
    "conversations": {"id", "created_at"},
    "decision_cycles": {"id"},
    "market_assets": {"updated_at"},
    "market_asset_ctx": {"updated_at"},
    "trader_state": {"updated_at"},
    "sim_orders": {"updated_at"},
    "sim_balances": {"updated_at"},
}
# the serial conversation id is replaced by the thread's model; line numbers and sources depend on the run
MESSAGES_SQL = ("SELECT c.model_id, m.role, m.content, m.ts_ms, m.metadata FROM conversation_messages m"
                " JOIN conversations c ON c.id = m.conversation_id")
DEAD_LETTERS_SQL = "SELECT event_type, field, reason, raw FROM ingest_dead_letters"


def _key(row: tuple) -> tuple:
    return tuple(repr(v) for v in row)


def db_state(dsn: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    with psycopg.connect(dsn) as conn:
        for table, skip in TABLES.items():
            cols = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,)) if r[0] not in skip]
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            out[table] = sorted(rows, key=_key)
        out["conversation_messages"] = sorted(conn.execute(MESSAGES_SQL).fetchall(), key=_key)
        out["ingest_dead_letters"] = sorted(conn.execute(DEAD_LETTERS_SQL).fetchall(), key=_key)
    return out


def redis_state(client: redis_lib.Redis, prefix: str) -> tuple[dict[str, Any], list, dict[str, dict]]:
    """(every key but the streams -> (type, value), the trade stream's raw entries, the trade stream folded
    per trade). The changes stream is left out: it logs when batches committed, which is no state."""
    keys: dict[str, Any] = {}
    stream_name = f"{prefix}:trades:stream"
    for raw in client.scan_iter(match=f"{prefix}:*", count=1000):
        name = raw.decode()
        if name in (stream_name, f"{prefix}:changes"):
            continue
        kind = client.type(raw).decode()
        read = {"string": client.get, "list": lambda k: client.lrange(k, 0, -1), "hash": client.hgetall,
                "zset": lambda k: client.zrange(k, 0, -1, withscores=True)}[kind]
        keys[name.removeprefix(prefix + ":")] = (kind, read(raw))
    entries = [fields for _, fields in client.xrange(stream_name)]
    folded: dict[str, dict] = {}
    for fields in entries:
        if fields[b"op"] == b"delete":
            folded.pop(fields[b"id"].decode(), None)
        else:
            folded[fields[b"id"].decode()] = {k: v for k, v in fields.items() if k != b"op"}
    return keys, entries, folded


def _keep_everything(config) -> None:
    """Runs are compared by content: no key may expire and no stream entry be trimmed while they run
    (however slow the machine), so TTLs are an hour and the stream keeps every change here."""
    for ttl_class in ("short", "medium", "long", "positions"):
        setattr(config.root.ttl, ttl_class, 3600.0)
    config.root.ingest.trades_stream_maxlen = 10_000_000


@pytest.fixture
def second_store(test_servers, template_db):
    """Another migrated database and Redis prefix, for the shuffled run."""
    name = _new_database(test_servers.admin_dsn, template_db)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield with_database(test_servers.admin_dsn, name), prefix
    with _admin(test_servers.admin_dsn) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    client = redis_lib.Redis.from_url(test_servers.redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


async def test_100k_events_once_twice_and_shuffled_leave_the_same_state(rt, pg_dsn, redis_sync, test_servers,
                                                                        second_store):
    registrations, facts = generate()
    assert len(registrations) + len(facts) >= 100_000
    _keep_everything(rt.config)

    service = IngestService(rt)
    first = await service.ingest_lines(registrations + facts, source="log")
    assert first.rejected == 100 and first.accepted > 90_000, first.summary()
    state_once = db_state(pg_dsn)
    keys_once, stream_once, folded_once = redis_state(redis_sync, rt.keys.prefix)
    assert len(state_once["trades"]) > 4_000 and len(state_once["positions"]) > 2_000
    assert len(state_once["price_ticks"]) == 78_750  # 75,000 + 3,750 from a second source

    second = await IngestService(rt).ingest_lines(registrations + facts, source="log")
    assert (second.accepted, second.rejected) == (0, 100)
    assert db_state(pg_dsn) == state_once
    assert redis_state(redis_sync, rt.keys.prefix) == (keys_once, stream_once, folded_once)

    rng = random.Random(11)
    shuffled = facts + rng.sample(facts, len(facts) // 10)  # 10 % of the events again
    rng.shuffle(shuffled)
    dsn2, prefix2 = second_store
    config2 = make_config(dsn2, test_servers.redis_url, prefix2)
    _keep_everything(config2)
    async with open_runtime(config2, Servers(dsn2, test_servers.redis_url)) as rt2:
        third = await IngestService(rt2).ingest_lines(registrations + shuffled, source="shuffled")
    bad = {r.raw for r in first.rejections}
    assert third.rejected == sum(line in bad for line in shuffled)
    assert db_state(dsn2) == state_once
    keys_shuffled, _, folded_shuffled = redis_state(redis_sync, prefix2)
    assert keys_shuffled == keys_once
    assert folded_shuffled == folded_once
