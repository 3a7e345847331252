"""The whole Redis keyspace of design 3.2, in one place.

Each key pattern is declared once in :data:`PATTERNS` with its Redis type and TTL class; code builds
keys only through :class:`Keyspace`, whose methods validate every placeholder and attach the TTL
from the configured classes (design 3.1, 3.4 "config-driven TTLs"). No other module writes a key
string or a TTL literal.

With the default prefix ``nof0`` the names are exactly the design's (``nof0:price:latest:BTC``,
``nof0:positions:gpt-5``). Tests give each run its own prefix to isolate namespaces.

On a Redis Cluster (``Keyspace(..., cluster=True)``) a pattern's ``tag`` becomes a hash tag, so keys
written together land in one slot: a placeholder tag wraps its value (``nof0:positions:{gpt-5}`` and
``nof0:lock:positions:{gpt-5}``), a literal tag is put after the prefix (``nof0:{trades}:trades:stream``
beside its guards). Untagged keys are only ever written alone or in per-slot MULTIs (cache/write.py).
Single-node names stay the design's.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Protocol

from nof0.cache.parts import InvalidKeyPart, validate_part

__all__ = ["KeyType", "KeyPattern", "Key", "Keyspace", "PATTERNS", "InvalidKeyPart", "validate_part", "TTLs"]


class KeyType(str, enum.Enum):
    STRING = "string"
    HASH = "hash"
    LIST = "list"
    ZSET = "zset"
    STREAM = "stream"


@dataclass(frozen=True, slots=True)
class KeyPattern:
    name: str  # builder method on Keyspace
    pattern: str  # below the prefix, with {placeholders}
    type: KeyType
    ttl_class: str | None  # a TTLClasses field, or None for no expiry
    optional: bool  # marked optional in design 3.2
    source: str  # source of truth (design 3.2)
    tag: str | None = None  # cluster hash tag: a placeholder name, or a literal shared by a group of keys


# Design 3.2, row for row. TTL classes: 10 s -> short, 60 s -> medium, 5 min / 300 s -> long;
# the design's 10 min analytics TTL becomes the long class (issue: "Long TTL class"); the 30 s
# positions hash, 5 s lock and 24 h guard have classes of their own (see config.TTLClasses).
PATTERNS: tuple[KeyPattern, ...] = (
    KeyPattern("price_latest", "price:latest:{symbol}", KeyType.STRING, "short", False, "price_latest"),
    KeyPattern("crypto_prices", "crypto_prices", KeyType.STRING, "short", False, "price_latest"),
    KeyPattern("positions", "positions:{model_id}", KeyType.HASH, "positions", False, "positions (open)", "model_id"),
    KeyPattern("positions_lock", "lock:positions:{model_id}", KeyType.STRING, "lock", False, "coordination", "model_id"),
    KeyPattern("trades_recent", "trades:recent:{model_id}", KeyType.LIST, "medium", True, "trades (latest N)", "model_id"),
    KeyPattern("trades_stream", "trades:stream", KeyType.STREAM, None, False, "ingest events", "trades"),
    KeyPattern("ingest_trade", "ingest:trade:{trade_id}", KeyType.STRING, "idempotency", False, "guard", "trades"),
    KeyPattern("leaderboard", "leaderboard", KeyType.ZSET, "medium", False, "v_leaderboard", "leaderboard"),
    KeyPattern("leaderboard_cache", "leaderboard:cache", KeyType.STRING, "medium", True, "v_leaderboard", "leaderboard"),
    KeyPattern("since_inception", "since_inception:{model_id}", KeyType.LIST, "long", False, "v_since_inception"),
    KeyPattern("analytics", "analytics:{model_id}", KeyType.STRING, "long", False, "model_analytics"),
    KeyPattern("analytics_all", "analytics:all", KeyType.STRING, "long", True, "model_analytics"),
    KeyPattern("conversations", "conversations:{model_id}", KeyType.LIST, "long", False, "conversation_messages"),
    KeyPattern("decision_last", "decision:last:{model_id}", KeyType.STRING, "medium", True, "decision_cycles"),
    KeyPattern("trader_state", "trader:{trader_id}:state", KeyType.HASH, "medium", False, "trader_state"),
    KeyPattern("market_asset", "market:asset:{provider}:{symbol}", KeyType.STRING, "long", False, "market_assets"),
    KeyPattern("market_ctx", "market:ctx:{provider}:{symbol}", KeyType.STRING, "medium", False, "market_asset_ctx"),
    KeyPattern("sim_orders", "sim:orders:{trader_id}", KeyType.LIST, "medium", True, "sim_orders"),
    KeyPattern("sim_balances", "sim:balances:{trader_id}", KeyType.HASH, "medium", True, "sim_balances"),
)

# outside design 3.2: the scale-out coordination of docs/scaling.md (engine processes sharing the traders)
COORDINATION: tuple[KeyPattern, ...] = (
    KeyPattern("trader_lease", "lease:trader:{trader_id}", KeyType.STRING, "lease", False, "coordination",
               "trader_id"),
    KeyPattern("trader_fence", "fence:trader:{trader_id}", KeyType.STRING, None, False, "coordination", "trader_id"),
    KeyPattern("feed_lease", "lease:feed:{provider}", KeyType.STRING, "lease", False, "coordination", "provider"),
    KeyPattern("feed_fence", "fence:feed:{provider}", KeyType.STRING, None, False, "coordination", "provider"),
    KeyPattern("engines", "engines", KeyType.ZSET, "lease", False, "coordination"),
)

_BY_NAME = {p.name: p for p in PATTERNS + COORDINATION}


class TTLs(Protocol):
    """The configured TTL classes (``config.TTLClasses``), by what the keyspace asks of them: taken by
    shape so this module does not import the configuration (which checks key parts with ``cache.parts``)."""

    def millis(self, name: str) -> int: ...

@dataclass(frozen=True, slots=True)
class Key:
    name: str
    pattern: KeyPattern
    ttl_ms: int | None

    @property
    def type(self) -> KeyType:
        return self.pattern.type


class Keyspace:
    """Builds validated keys under ``prefix`` with TTLs from the configured classes."""

    def __init__(self, ttl: TTLs, prefix: str = "nof0", *, cluster: bool = False) -> None:
        validate_part("prefix", prefix)
        self.prefix = prefix
        self.ttl = ttl
        self.cluster = cluster

    def _key(self, name: str, **parts: str) -> Key:
        p = _BY_NAME[name]
        for field, value in parts.items():
            validate_part(field, value)
        ttl_ms = self.ttl.millis(p.ttl_class) if p.ttl_class else None
        return Key(self._name(p, parts), p, ttl_ms)

    def _name(self, p: KeyPattern, parts: dict[str, str]) -> str:
        if not (self.cluster and p.tag):
            return f"{self.prefix}:{p.pattern.format(**parts)}"
        if p.tag in parts:  # wrap the placeholder's value: the keys of one owner share a slot
            return f"{self.prefix}:{p.pattern.format(**{**parts, p.tag: '{' + parts[p.tag] + '}'})}"
        return f"{self.prefix}:{{{p.tag}}}:{p.pattern.format(**parts)}"

    def ttl_ms(self, ttl_class: str) -> int:
        return self.ttl.millis(ttl_class)

    def family_of(self, name: str) -> KeyPattern | None:
        """The pattern a key name under this prefix was built from (cluster hash tags included), or None.
        Literal patterns win over placeholders (``analytics:all`` is not ``analytics:{model_id}``)."""
        head = f"{self.prefix}:"
        if not name.startswith(head):
            return None
        rest = name[len(head):]
        if rest.startswith("{") and "}:" in rest:  # a literal cluster tag: nof0:{trades}:trades:stream
            rest = rest[rest.index("}:") + 2:]
        rest = rest.replace("{", "").replace("}", "")
        return next((p for p, rx in _FAMILY_REGEXES if rx.match(rest)), None)

    def scan_pattern(self, pattern_name: str | None = None) -> str:
        """A SCAN MATCH pattern for one key pattern, or for the whole namespace."""
        if pattern_name is None:
            return f"{self.prefix}:*"
        p = _BY_NAME[pattern_name]
        return self._name(p, {f: "*" for f in re.findall(r"\{([a-z_]+)\}", p.pattern)})

    # one builder per design 3.2 row ------------------------------------------------------
    def price_latest(self, symbol: str) -> Key:
        return self._key("price_latest", symbol=symbol)

    def crypto_prices(self) -> Key:
        return self._key("crypto_prices")

    def positions(self, model_id: str) -> Key:
        return self._key("positions", model_id=model_id)

    def positions_lock(self, model_id: str) -> Key:
        return self._key("positions_lock", model_id=model_id)

    def trades_recent(self, model_id: str) -> Key:
        return self._key("trades_recent", model_id=model_id)

    def trades_stream(self) -> Key:
        return self._key("trades_stream")

    def ingest_trade(self, trade_id: str) -> Key:
        return self._key("ingest_trade", trade_id=trade_id)

    def leaderboard(self) -> Key:
        return self._key("leaderboard")

    def leaderboard_cache(self) -> Key:
        return self._key("leaderboard_cache")

    def since_inception(self, model_id: str) -> Key:
        return self._key("since_inception", model_id=model_id)

    def analytics(self, model_id: str) -> Key:
        return self._key("analytics", model_id=model_id)

    def analytics_all(self) -> Key:
        return self._key("analytics_all")

    def conversations(self, model_id: str) -> Key:
        return self._key("conversations", model_id=model_id)

    def decision_last(self, model_id: str) -> Key:
        return self._key("decision_last", model_id=model_id)

    def trader_state(self, trader_id: str) -> Key:
        return self._key("trader_state", trader_id=trader_id)

    def market_asset(self, provider: str, symbol: str) -> Key:
        return self._key("market_asset", provider=provider, symbol=symbol)

    def market_ctx(self, provider: str, symbol: str) -> Key:
        return self._key("market_ctx", provider=provider, symbol=symbol)

    def sim_orders(self, trader_id: str) -> Key:
        return self._key("sim_orders", trader_id=trader_id)

    def sim_balances(self, trader_id: str) -> Key:
        return self._key("sim_balances", trader_id=trader_id)

    # scale-out coordination (docs/scaling.md): leases, their fencing counters, the live engine processes
    def trader_lease(self, trader_id: str) -> Key:
        return self._key("trader_lease", trader_id=trader_id)

    def trader_fence(self, trader_id: str) -> Key:
        return self._key("trader_fence", trader_id=trader_id)

    def feed_lease(self, provider: str) -> Key:
        return self._key("feed_lease", provider=provider)

    def feed_fence(self, provider: str) -> Key:
        return self._key("feed_fence", provider=provider)

    def engines(self) -> Key:
        return self._key("engines")

    # keys outside design 3.2 that the platform itself needs --------------------------------
    def lock(self, resource: str) -> Key:
        """A generic ``SET NX PX`` lock (design 3.3), e.g. for analytics or an API payload rebuild."""
        validate_part("resource", resource)
        return Key(f"{self.prefix}:lock:{resource}", _LOCK, self.ttl.millis("lock"))

    def cache_sentinel(self) -> Key:
        """Written last by a full rebuild (design 3.4), never expiring: its absence means the keyspace was
        dropped (FLUSHALL, a Redis restart without persistence, eviction) and must be rebuilt."""
        return Key(f"{self.prefix}:cache:sentinel", _SENTINEL, None)

    def api_payload(self, endpoint: str, variant: str = "all", ttl_class: str = "medium") -> Key:
        """Pre-encoded API response bytes (encode once per data change), per endpoint TTL class."""
        validate_part("endpoint", endpoint)
        validate_part("variant", variant)
        return Key(f"{self.prefix}:api:{endpoint}:{variant}", _API, self.ttl.millis(ttl_class))

    def changes_stream(self) -> Key:
        """What writers changed (``cache.changes``): one entry per change, read by every API process."""
        return Key(f"{self.prefix}:changes", _CHANGES, None)

    def api_payload_scan(self, endpoint: str) -> str:
        """A SCAN MATCH pattern for every cached response variant of one endpoint."""
        validate_part("endpoint", endpoint)
        return f"{self.prefix}:api:{endpoint}:*"


_LOCK = KeyPattern("lock", "lock:{resource}", KeyType.STRING, "lock", False, "coordination")
_SENTINEL = KeyPattern("cache_sentinel", "cache:sentinel", KeyType.STRING, None, False, "cache rebuild")
_API = KeyPattern("api_payload", "api:{endpoint}:{variant}", KeyType.STRING, "medium", False, "API payloads")
_CHANGES = KeyPattern("changes_stream", "changes", KeyType.STREAM, None, False, "ingest and job commits")


def _family_regexes() -> list[tuple[KeyPattern, re.Pattern[str]]]:
    every = sorted(PATTERNS + COORDINATION + (_LOCK, _SENTINEL, _API, _CHANGES), key=lambda p: p.pattern.count("{"))
    return [(p, re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^:]+", re.escape(p.pattern)) + r"\Z")) for p in every]


_FAMILY_REGEXES = _family_regexes()
