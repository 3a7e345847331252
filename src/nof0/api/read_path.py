"""The API read path: Redis first, Postgres on a miss or a Redis error (design 3.3, 3.4; conventions 7).

For one response (endpoint + variant) the steps are:

0. Bytes this process confirmed current less than ``LOCAL_FRESH_MS`` ago are served without asking
   Redis (a near cache: one Redis round trip per key per second instead of one per request; it adds
   at most that second to the staleness the endpoint's TTL class already allows). These requests
   are not counted in ``nof0_cache_requests_total``, which counts Redis reads. A request that finds
   the held bytes in the last quarter of that window starts steps 1-2 in the background (refresh
   ahead) and is served at once, so a key polled steadily is confirmed, or rebuilt after an
   invalidation, before its window ends and no request waits for Redis or Postgres; the window itself
   is unchanged (bytes are never served more than ``LOCAL_FRESH_MS`` after they were confirmed).
1. Ask Redis for the 42-byte header of ``nof0:api:{endpoint}:{variant}``. When its ETag equals the
   payload this process already holds, serve those bytes (a hit moves 42 bytes, and encodes nothing).
   When it differs, fetch the whole value once and keep it.
2. On a miss, rebuild: one coroutine per process (single flight) tries the design 3.3 lock
   ``nof0:lock:api.{endpoint}.{variant}``. The holder builds from Postgres, writes the value back with
   the endpoint's TTL class and releases the lock. A process that finds the lock taken serves the
   previous bytes it holds (when confirmed within the TTL class), or waits briefly for the holder's
   value, and builds itself only if none arrives (the holder may have died).
3. On a Redis error the request is a miss that is never written back: the process serves the bytes it
   holds while they are younger than the TTL class, else builds from Postgres. Redis is then left
   alone for ``REDIS_RETRY_MS`` (a dead server costs one failed call per second, not one per request);
   the error is counted, and logged once per outage (``outage.py``); when Redis answers again the
   cache refills on the next miss.
4. Postgres unreachable (a connection error or no connection within ``postgres.connect_timeout``): the
   miss answers 503 and Postgres is known down. Until it is back, misses answer 503 at once instead of
   waiting for the connect timeout each; once per ``POSTGRES_RETRY_MS`` a single quick probe (at most
   ``POSTGRES_PROBE_S``) tries it, and the first probe that succeeds ends the outage for everyone.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import time
from typing import Any, Awaitable, Callable, Iterable

import psycopg
from psycopg_pool import PoolTimeout
from redis.exceptions import RedisError

from nof0.api import repository as repo
from nof0.api.errors import ApiError, Unavailable
from nof0.api.outage import Outage
from nof0.api.payload import HEADER_LEN, Payload, etag_of_header
from nof0.api.sources import ALL_VARIANT
from nof0.cache.guards import acquire_lock, release_lock
from nof0.cache.keys import Key
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["ReadPath", "Builder", "REDIS_RETRY_MS", "POSTGRES_RETRY_MS", "POSTGRES_PROBE_S", "LOCAL_FRESH_MS",
           "POSTGRES_DOWN", "postgres_unreachable"]

log = get_logger("nof0.api.read_path")

Builder = Callable[[], Awaitable[Any]]  # returns the JSON-able body, built from Postgres

REDIS_RETRY_MS = 1000  # after a Redis error, how long requests skip Redis
POSTGRES_RETRY_MS = 1000  # while Postgres is known down, how often a probe may try it
POSTGRES_PROBE_S = 2.0  # the longest a probe waits for a connection (capped by postgres.connect_timeout)
# what a lost Postgres raises (``postgres_unreachable`` tells it from a refused statement)
POSTGRES_DOWN = (psycopg.OperationalError, PoolTimeout)
LOCAL_FRESH_MS = 1000  # held bytes confirmed this recently are served without asking Redis
_PEER_WAIT_S = 0.02  # poll interval while another process rebuilds
_PEER_WAIT_ROUNDS = 50  # at most ~1 s, well inside the 5 s lock TTL


class ReadPath:
    """Per-process read path of the ``db`` source. Holds the last payload of each key it served."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.gzip_min = rt.config.root.api.gzip_min_bytes
        self._held: dict[str, Payload] = {}
        self._inflight: dict[str, asyncio.Future[Payload]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}  # refresh-ahead tasks (step 0)
        self.redis = Outage("redis", rt.clock, REDIS_RETRY_MS)
        self.postgres = Outage("postgres", rt.clock, POSTGRES_RETRY_MS)
        self._probe_s = min(POSTGRES_PROBE_S, float(rt.config.root.postgres.connect_timeout))
        self._keys: dict[tuple[str, str], Key] = {}  # whole-endpoint keys, built once

    # ----------------------------------------------------------------------------- public
    def peek(self, endpoint: str, variant: str, ttl_class: str, build: Builder | None = None) -> Payload | None:
        """Step 0 alone, without awaiting: the held payload when confirmed within ``LOCAL_FRESH_MS``.

        The HTTP protocol (``wire.py``) answers with it inside the parser callback; None sends the
        request down the full path (``get``). With ``build``, a payload in the last quarter of its window
        is refreshed in the background (the module doc's refresh ahead)."""
        key = self._key(endpoint, variant, ttl_class)
        held = self._held.get(key.name)
        if held is None:
            return None
        window = min(LOCAL_FRESH_MS, key.ttl_ms or 0)
        age = self.rt.clock.now_ms() - held.validated_ms
        if age >= window:
            return None
        if build is not None and age >= window - window // 4 and key.name not in self._refreshing:
            self._refresh_ahead(key, endpoint, variant, build)
        return held

    async def get(self, endpoint: str, variant: str, ttl_class: str, build: Builder) -> Payload:
        held = self.peek(endpoint, variant, ttl_class, build)
        if held is not None:
            return held
        key = self._key(endpoint, variant, ttl_class)
        now = self.rt.clock.now_ms()
        if self.redis_usable(now):
            try:
                payload = await self._from_redis(key, now)
            except RedisError as exc:
                self.rt.metrics.cache_lookups.labels(key.pattern.name, "error").inc()
                self.redis_failed(endpoint, exc)
            else:
                self.redis.answered()
                outcome = "hit" if payload is not None else "miss"
                self.rt.metrics.cache_requests.labels(endpoint, outcome).inc()
                self.rt.metrics.cache_lookups.labels(key.pattern.name, outcome).inc()
                if payload is not None:
                    return payload
                return await self._single_flight(key, endpoint, variant, build)
        held = self._held.get(key.name)
        if held is not None and now - held.validated_ms < (key.ttl_ms or 0):
            return held
        return await self._single_flight(key, endpoint, variant, build)

    def forget(self, endpoints: Iterable[str]) -> None:
        """Drop the bytes held for ``endpoints`` (every variant): their data changed (``api.listener``), so
        the next request asks Redis instead of serving them for the rest of ``LOCAL_FRESH_MS``."""
        patterns = [self.rt.keys.api_payload_scan(e) for e in endpoints]
        for name in [n for n in self._held if any(fnmatch.fnmatchcase(n, p) for p in patterns)]:
            del self._held[name]

    def _refresh_ahead(self, key: Key, endpoint: str, variant: str, build: Builder) -> None:
        task = asyncio.get_running_loop().create_task(self._refresh(key, endpoint, variant, build))
        self._refreshing[key.name] = task
        task.add_done_callback(lambda t, name=key.name: self._refreshed(name, t))

    async def _refresh(self, key: Key, endpoint: str, variant: str, build: Builder) -> None:
        now = self.rt.clock.now_ms()
        if not self.redis_usable(now):
            return  # requests after the window take the Redis-down way (step 3)
        try:
            payload = await self._from_redis(key, now)
        except RedisError as exc:
            self.redis_failed(endpoint, exc)
            return
        self.redis.answered()
        self.rt.metrics.cache_requests.labels(endpoint, "hit" if payload is not None else "miss").inc()
        if payload is None:
            await self._single_flight(key, endpoint, variant, build)

    def _refreshed(self, name: str, task: asyncio.Task[None]) -> None:
        self._refreshing.pop(name, None)
        if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, ApiError):
            # the requests after the window rebuild themselves and answer the error; an outage (an
            # ApiError: 503) is logged once by its Outage, anything else here
            log.warning("background refresh failed", key=name, error=f"{type(exc).__name__}: {exc}")

    def _key(self, endpoint: str, variant: str, ttl_class: str) -> Key:
        if variant != ALL_VARIANT:  # per-model keys are not kept: their ids come from requests
            return self.rt.keys.api_payload(endpoint, variant, ttl_class)
        key = self._keys.get((endpoint, ttl_class))
        if key is None:
            key = self._keys[(endpoint, ttl_class)] = self.rt.keys.api_payload(endpoint, variant, ttl_class)
        return key

    # ----------------------------------------------------------------------------- Redis
    def redis_usable(self, now_ms: int | None = None) -> bool:
        """False for ``REDIS_RETRY_MS`` after a Redis error: callers then skip Redis entirely."""
        return self.redis.usable(now_ms)

    def redis_failed(self, endpoint: str, exc: Exception) -> None:
        """Count a Redis error, open the retry window; logged once per outage (serving from Postgres)."""
        self.rt.metrics.cache_requests.labels(endpoint, "error").inc()
        self.redis.failed(exc, endpoint=endpoint, serving="postgres")

    async def _from_redis(self, key: Key, now: int) -> Payload | None:
        etag = etag_of_header(await self.rt.redis.getrange(key.name, 0, HEADER_LEN - 1))
        if etag is None:
            return None
        held = self._held.get(key.name)
        if held is not None and held.etag == etag:
            held.validated_ms = now
            return held
        payload = Payload.from_redis(await self.rt.redis.get(key.name), gzip_min=self.gzip_min, now_ms=now)
        if payload is not None:
            await self._prepare(payload)
            self._held[key.name] = payload
        return payload

    # ----------------------------------------------------------------------------- rebuild
    async def _single_flight(self, key: Key, endpoint: str, variant: str, build: Builder) -> Payload:
        fut = self._inflight.get(key.name)
        if fut is None:
            fut = asyncio.ensure_future(self._rebuild(key, endpoint, variant, build))
            self._inflight[key.name] = fut
            fut.add_done_callback(lambda f, name=key.name: self._done(name, f))
        # shield: a client that disconnects must not cancel the rebuild others wait for
        return await asyncio.shield(fut)

    def _done(self, name: str, fut: asyncio.Future[Payload]) -> None:
        self._inflight.pop(name, None)
        if not fut.cancelled():
            fut.exception()  # retrieved here: every waiter may have gone

    async def _rebuild(self, key: Key, endpoint: str, variant: str, build: Builder) -> Payload:
        lock = self.rt.keys.lock(_lock_resource(endpoint, variant))
        token: str | None = None
        redis_ok = self.redis_usable()
        if redis_ok:
            try:
                token = await acquire_lock(self.rt.redis, lock)
            except RedisError as exc:
                self.redis_failed(endpoint, exc)
                redis_ok = False
        try:
            if redis_ok and token is None:
                # another process is rebuilding this key: previous bytes (if not older than the TTL
                # class), else its result
                held = self._held.get(key.name)
                if held is not None and self.rt.clock.now_ms() - held.validated_ms < (key.ttl_ms or 0):
                    return held
                waited = await self._wait_for_peer(key, endpoint)
                if waited is not None:
                    return waited
            payload = await self._build(endpoint, build)
            if redis_ok:
                await self._write_back(key, endpoint, payload)
            self._held[key.name] = payload
            return payload
        finally:
            if token is not None:
                try:
                    await release_lock(self.rt.redis, lock, token)
                except RedisError as exc:  # the lock expires on its own
                    self.redis_failed(endpoint, exc)

    async def _wait_for_peer(self, key: Key, endpoint: str) -> Payload | None:
        for _ in range(_PEER_WAIT_ROUNDS):
            await asyncio.sleep(_PEER_WAIT_S)
            try:
                payload = await self._from_redis(key, self.rt.clock.now_ms())
            except RedisError as exc:
                self.redis_failed(endpoint, exc)
                return None
            if payload is not None:
                return payload
        return None

    async def _build(self, endpoint: str, build: Builder) -> Payload:
        started = time.perf_counter()
        await self._postgres_gate(endpoint)
        try:
            obj = await build()
        except POSTGRES_DOWN as exc:
            if not postgres_unreachable(exc):
                raise
            self.postgres.failed(exc, endpoint=endpoint)
            raise _unavailable() from exc
        payload = Payload.encode(obj, gzip_min=self.gzip_min, now_ms=self.rt.clock.now_ms())
        await self._prepare(payload)
        self.rt.metrics.cache_fill_seconds.labels(endpoint).observe(time.perf_counter() - started)
        return payload

    async def _postgres_gate(self, endpoint: str) -> None:
        """Return when a build may use Postgres; raise 503 at once while it is known down.

        While down, the first call after each retry window probes it (one at a time, a short wait);
        every other call answers 503 without touching the pool.
        """
        outage = self.postgres
        if not outage.down:
            return
        if outage.probing or not outage.usable():
            raise _unavailable()
        outage.probing = True
        try:
            async with self.rt.pool.connection(timeout=self._probe_s) as conn, conn.transaction():
                await repo.ping(conn)
        except POSTGRES_DOWN as exc:
            outage.failed(exc, endpoint=endpoint)
            raise _unavailable() from exc
        finally:
            outage.probing = False
        outage.answered()

    async def _write_back(self, key: Key, endpoint: str, payload: Payload) -> None:
        try:
            await self.rt.redis.set(key.name, payload.to_redis(), px=key.ttl_ms)
        except RedisError as exc:
            self.redis_failed(endpoint, exc)

    async def _prepare(self, payload: Payload) -> None:
        # gzip once per version; large bodies compress in a thread so requests keep flowing
        if payload.compressible:
            if len(payload.body) > _GZIP_IN_THREAD_BYTES:
                await asyncio.to_thread(payload.gzipped)
            else:
                payload.gzipped()


_GZIP_IN_THREAD_BYTES = 64 * 1024


def postgres_unreachable(exc: BaseException) -> bool:
    """No connection (none within the timeout, refused, lost) or the server shutting down, as opposed
    to a statement the server refused (a query cancelled, a serialization failure...)."""
    if isinstance(exc, PoolTimeout):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P"))


def _unavailable() -> Unavailable:
    return Unavailable("the database is unreachable; retry shortly")


def _lock_resource(endpoint: str, variant: str) -> str:
    resource = f"api.{endpoint}.{variant}"
    if len(resource) <= 64:
        return resource
    return f"api.{endpoint}.{hashlib.blake2b(variant.encode(), digest_size=8).hexdigest()}"
