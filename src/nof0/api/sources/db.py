"""The ``db`` data source: every endpoint built from Postgres, cached in Redis (``read_path``).

Builders read a Redis *domain* key only where it holds a whole, self-contained value that its
writer replaces at once: ``nof0:crypto_prices`` (rebuilt from ``price_latest`` per tick batch),
``nof0:leaderboard:cache`` (the leaderboard job's body), ``nof0:analytics:{model_id}`` and
``nof0:analytics:all`` (the analytics job). Keys maintained piece by piece with a TTL (the
positions hash, the conversation and recent-trades lists) are not read: after an expiry, one new
message or position re-creates them partially, and a reader cannot tell a partial value from a
complete one. Those endpoints are built from Postgres and cached as whole responses instead.

A domain key that is absent, unreadable or malformed is a miss (logged, counted), never an error.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import msgspec
from redis.exceptions import RedisError

from nof0.analytics import repository as analytics_repo
from nof0.analytics.payloads import leaderboard_payload, since_inception_payload
from nof0.api import repository as repo
from nof0.api.account_totals import build_account_totals
from nof0.api.errors import NotFound
from nof0.api.payload import Payload
from nof0.api.read_path import ReadPath
from nof0.api.sources import ALL_VARIANT
from nof0.api.spec import EndpointSpec
from nof0.api.traders import traders_payload
from nof0.cache.keys import Key
from nof0.conversations.payloads import cycle_json, message_json
from nof0.obs.logging import get_logger
from nof0.prices.payloads import crypto_prices_map
from nof0.runtime import Runtime
from nof0.trades.payloads import position_json, trade_json

__all__ = ["DbSource", "TRADES_PER_MODEL"]

log = get_logger("nof0.api.sources.db")

# nof1 caps /api/trades: the capture cuts one model's history at exactly 100 trades.
TRADES_PER_MODEL = 100


class DbSource:
    kind = "db"

    def __init__(self, rt: Runtime, read_path: ReadPath | None = None) -> None:
        self.rt = rt
        self.read_path = read_path or ReadPath(rt)
        self._whole: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {}  # peek's builders, made once
        self._builders: dict[str, Callable[[str, int], Awaitable[dict[str, Any]]]] = {
            "crypto-prices": self._crypto_prices,
            "positions": self._positions,
            "account-totals": self._account_totals,
            "trades": self._trades,
            "since-inception-values": self._since_inception,
            "leaderboard": self._leaderboard,
            "analytics": self._analytics,
            "conversations": self._conversations,
            "traders": self._traders,
        }

    async def payload(self, spec: EndpointSpec, variant: str = ALL_VARIANT) -> Payload:
        return await self.read_path.get(spec.name, variant, spec.ttl_class, lambda: self.build(spec, variant))

    def peek(self, spec: EndpointSpec) -> Payload | None:
        build = self._whole.get(spec.name)
        if build is None:
            build = self._whole[spec.name] = lambda: self.build(spec, ALL_VARIANT)
        return self.read_path.peek(spec.name, ALL_VARIANT, spec.ttl_class, build)

    async def build(self, spec: EndpointSpec, variant: str = ALL_VARIANT) -> dict[str, Any]:
        """The body built now, bypassing the response cache (the read path's miss; ``nof0 parity``)."""
        return await self._builders[spec.name](variant, self.rt.clock.now_ms())

    # ----------------------------------------------------------------------------- domain keys
    async def _domain_json(self, key: Key, endpoint: str) -> Any:
        if not self.read_path.redis_usable():
            return None
        lookups = self.rt.metrics.cache_lookups
        try:
            raw = await self.rt.redis.get(key.name)
        except RedisError as exc:
            lookups.labels(key.pattern.name, "error").inc()
            self.read_path.redis_failed(endpoint, exc)
            return None
        self.read_path.redis.answered()
        lookups.labels(key.pattern.name, "hit" if raw is not None else "miss").inc()
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            log.warning("malformed redis value, reading postgres", key=key.name, error=str(exc))
            return None

    async def _domain_list(self, key: Key, endpoint: str, field: str) -> list[Any] | None:
        """A domain value of the form ``{field: [...]}``, or None."""
        value = await self._domain_json(key, endpoint)
        if isinstance(value, dict) and isinstance(value.get(field), list):
            return value[field]
        return None

    # ----------------------------------------------------------------------------- builders
    async def _crypto_prices(self, variant: str, now: int) -> dict[str, Any]:
        prices = await self._domain_json(self.rt.keys.crypto_prices(), "crypto-prices")
        if not isinstance(prices, dict):
            async with self.rt.reads.connection() as conn, conn.transaction():
                prices = crypto_prices_map(await repo.list_latest_prices(conn))
        return {"prices": prices, "serverTime": now}

    async def _positions(self, variant: str, now: int) -> dict[str, Any]:
        async with self.rt.reads.connection() as conn, conn.transaction():
            rows = await repo.list_open_positions(conn)
        by_model: dict[str, dict[str, Any]] = {}
        for r in rows:
            held = by_model.setdefault(r["account_model_id"], {})
            if r["id"] is not None:
                held[r["symbol"]] = position_json(r, r["mark_price"])
        return {"accountTotals": [{"model_id": m, "positions": p} for m, p in by_model.items()], "serverTime": now}

    async def _account_totals(self, variant: str, now: int) -> dict[str, Any]:
        async with self.rt.reads.connection() as conn, conn.transaction():
            return await build_account_totals(conn, now)

    async def _trades(self, variant: str, now: int) -> dict[str, Any]:
        async with self.rt.reads.connection() as conn, conn.transaction():
            rows = await repo.list_recent_trades(conn, TRADES_PER_MODEL)
        return {"trades": [trade_json(r) for r in rows], "serverTime": now}

    async def _since_inception(self, variant: str, now: int) -> dict[str, Any]:
        async with self.rt.reads.connection() as conn, conn.transaction():
            rows = await repo.list_since_inception_facts(conn)
        return since_inception_payload(rows, now)

    async def _leaderboard(self, variant: str, now: int) -> dict[str, Any]:
        entries = await self._domain_list(self.rt.keys.leaderboard_cache(), "leaderboard", "leaderboard")
        if entries is not None:
            return {"leaderboard": entries}
        async with self.rt.reads.connection() as conn, conn.transaction():
            return leaderboard_payload(await analytics_repo.list_leaderboard(conn))

    async def _analytics(self, variant: str, now: int) -> dict[str, Any]:
        if variant == ALL_VARIANT:
            items = await self._domain_list(self.rt.keys.analytics_all(), "analytics", "analytics")
            if items is None:
                async with self.rt.reads.connection() as conn, conn.transaction():
                    items = [r["payload"] for r in await analytics_repo.list_model_analytics(conn)]
            return {"analytics": items, "serverTime": now}
        one = await self._domain_json(self.rt.keys.analytics(variant), "analytics")
        if isinstance(one, dict):
            return {"analytics": [one], "serverTime": now}
        async with self.rt.reads.connection() as conn, conn.transaction():
            row = await analytics_repo.get_model_analytics(conn, variant)
            if row is None and not await repo.model_exists(conn, variant):
                raise NotFound(f"unknown model {variant!r}")
        # a known model whose analytics the job has not computed yet: an empty list, not a 404
        return {"analytics": [row["payload"]] if row else [], "serverTime": now}

    async def _conversations(self, variant: str, now: int) -> dict[str, Any]:
        """nof1's per-cycle items, newest first, then one per-model message list for the messages that
        belong to no cycle (an imported chat): both kinds of dashboard render."""
        window = self.rt.config.root.ingest.conversation_window
        async with self.rt.reads.connection() as conn, conn.transaction():
            cycles = await repo.list_recent_cycles(conn, self.rt.config.root.api.conversation_cycles)
            rows = await repo.list_recent_messages(conn, window)
        by_model: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_model.setdefault(r["model_id"], []).append(message_json(r))
        items = [cycle_json(c) for c in cycles]
        items += [{"model_id": m, "messages": msgs} for m, msgs in by_model.items()]
        return {"conversations": items, "serverTime": now}

    async def _traders(self, variant: str, now: int) -> dict[str, Any]:
        async with self.rt.reads.connection() as conn, conn.transaction():
            rows = await repo.list_traders(conn, now - now % 86_400_000)
        return traders_payload(rows, now)
