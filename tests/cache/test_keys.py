"""The keyspace against design 3.2: names, Redis types, TTL classes, part validation."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from nof0.cache.keys import PATTERNS, InvalidKeyPart, KeyType, Keyspace
from nof0.config import TTLClasses

# Design 3.2, transcribed: (builder, args, name, type, TTL seconds)
DESIGN_3_2 = [
    ("price_latest", ("BTC",), "nof0:price:latest:BTC", KeyType.STRING, 10),
    ("crypto_prices", (), "nof0:crypto_prices", KeyType.STRING, 10),
    ("positions", ("gpt-5",), "nof0:positions:gpt-5", KeyType.HASH, 30),
    ("positions_lock", ("gpt-5",), "nof0:lock:positions:gpt-5", KeyType.STRING, 5),
    ("trades_recent", ("gpt-5",), "nof0:trades:recent:gpt-5", KeyType.LIST, 60),
    ("trades_stream", (), "nof0:trades:stream", KeyType.STREAM, None),
    ("ingest_trade", ("t-1",), "nof0:ingest:trade:t-1", KeyType.STRING, 86400),
    ("leaderboard", (), "nof0:leaderboard", KeyType.ZSET, 60),
    ("leaderboard_cache", (), "nof0:leaderboard:cache", KeyType.STRING, 60),
    ("since_inception", ("gpt-5",), "nof0:since_inception:gpt-5", KeyType.LIST, 300),
    # design table says 10m; the analytics issue puts analytics in the Long class (300 s default)
    ("analytics", ("gpt-5",), "nof0:analytics:gpt-5", KeyType.STRING, 300),
    ("analytics_all", (), "nof0:analytics:all", KeyType.STRING, 300),
    ("conversations", ("gpt-5",), "nof0:conversations:gpt-5", KeyType.LIST, 300),
    ("decision_last", ("gpt-5",), "nof0:decision:last:gpt-5", KeyType.STRING, 60),
    ("trader_state", ("t1",), "nof0:trader:t1:state", KeyType.HASH, 60),
    ("market_asset", ("hyperliquid", "BTC"), "nof0:market:asset:hyperliquid:BTC", KeyType.STRING, 300),
    ("market_ctx", ("hyperliquid", "BTC"), "nof0:market:ctx:hyperliquid:BTC", KeyType.STRING, 60),
    ("sim_orders", ("t1",), "nof0:sim:orders:t1", KeyType.LIST, 60),
    ("sim_balances", ("t1",), "nof0:sim:balances:t1", KeyType.HASH, 60),
]

KEYS = Keyspace(TTLClasses())


def test_every_design_pattern_is_declared_once():
    assert sorted(p.name for p in PATTERNS) == sorted(row[0] for row in DESIGN_3_2)


@pytest.mark.parametrize("builder,args,name,type_,ttl_s", DESIGN_3_2, ids=[r[0] for r in DESIGN_3_2])
def test_key_matches_design(builder, args, name, type_, ttl_s):
    key = getattr(KEYS, builder)(*args)
    assert key.name == name
    assert key.type is type_
    assert key.ttl_ms == (None if ttl_s is None else ttl_s * 1000)


def test_ttls_come_from_configuration():
    keys = Keyspace(TTLClasses(short=2, medium=7, long=11), prefix="x")
    assert keys.price_latest("BTC").ttl_ms == 2000
    assert keys.leaderboard().ttl_ms == 7000
    assert keys.analytics("m").ttl_ms == 11000
    assert keys.price_latest("BTC").name == "x:price:latest:BTC"


@pytest.mark.parametrize("bad", ["gpt 5", "a*", "{x}", "a\nb", "", "x" * 65, "a:b", "a?", "a[1]"])
def test_unsafe_parts_are_refused(bad):
    with pytest.raises(InvalidKeyPart) as err:
        KEYS.positions(bad)
    assert "model_id" in str(err.value)


def test_non_string_part_is_refused():
    with pytest.raises(InvalidKeyPart, match="must be a string"):
        KEYS.price_latest(5)  # type: ignore[arg-type]


@given(st.from_regex(r"[A-Za-z0-9._@/-]{1,64}", fullmatch=True))
def test_safe_parts_are_accepted_verbatim(part):
    assert KEYS.conversations(part).name == f"nof0:conversations:{part}"


def test_scan_pattern():
    assert KEYS.scan_pattern("market_ctx") == "nof0:market:ctx:*:*"
    assert KEYS.scan_pattern() == "nof0:*"
