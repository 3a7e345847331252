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
   When a writer changes an endpoint's data (the change listener calls :meth:`ReadPath.mark_stale`),
   its held bytes are kept but marked stale: the next request starts the rebuild in the background
   (one per key: single flight) and is served the held bytes meanwhile (stale while revalidate), still
   only inside their window. So a change is visible as soon as its rebuild is done, and never later
   than ``LOCAL_FRESH_MS`` after the bytes it outdates were confirmed: past the window a request waits
   for the rebuild instead. Stale bytes are never served for longer (not even while Redis or a peer's
   lock would otherwise allow the TTL class), and a rebuild that overlapped a change is not written
   back (its reads may predate the change) and is held as stale.
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
        # changes heard per endpoint (mark_stale); a confirmation or rebuild that overlapped one is stale
        self._generation: dict[str, int] = {}
        self._stale: set[str] = set()  # held keys whose data changed since they were confirmed
        self._confirmed: dict[str, int] = {}  # held key -> its endpoint's generation when last confirmed
        self._how: dict[str, tuple[Key, str, str, Builder]] = {}  # held key -> how to rebuild it (rebuilt())

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
        if build is not None and key.name not in self._refreshing and (
                age >= window - window // 4 or key.name in self._stale):
            self._refresh_ahead(key, endpoint, variant, build)
        return held

    async def get(self, endpoint: str, variant: str, ttl_class: str, build: Builder) -> Payload:
        held = self.peek(endpoint, variant, ttl_class, build)
        if held is not None:
            return held
        key = self._key(endpoint, variant, ttl_class)
        self._how[key.name] = (key, endpoint, variant, build)
        now = self.rt.clock.now_ms()
        if self.redis_usable(now):
            try:
                payload = await self._from_redis(key, endpoint, now)
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
        held = self._servable(key, now)
        if held is not None:
            return held
        return await self._single_flight(key, endpoint, variant, build)

    def mark_stale(self, endpoints: Iterable[str]) -> None:
        """The data of ``endpoints`` changed (``api.listener``, after it dropped their Redis values): their
        held bytes (every variant) are served only until their window ends, while the first request
        rebuilds them in the background (the module doc's stale while revalidate)."""
        names = list(endpoints)
        for endpoint in names:
            self._generation[endpoint] = self._generation.get(endpoint, 0) + 1
        patterns = [self.rt.keys.api_payload_scan(e) for e in names]
        self._stale.update(n for n in self._held if any(fnmatch.fnmatchcase(n, p) for p in patterns))

    async def rebuilt(self, endpoints: Iterable[str]) -> None:
        """Rebuild now the held bytes of ``endpoints`` that :meth:`mark_stale` made stale and that are still
        served (inside their window); return once each is rebuilt from reads that began after the change,
        or out of its window (requests then wait for the rebuild themselves). The listener tells stream
        clients of a change only after this, so a client that refetches on the event gets the new facts."""
        targets = {e: self._generation.get(e, 0) for e in endpoints}
        for _ in range(3):  # bounded: a failing rebuild must not spin until the window ends
            now = self.rt.clock.now_ms()
            waiting = []
            for name in [n for n in self._stale if n in self._how]:
                key, endpoint, variant, build = self._how[name]
                if endpoint not in targets or self._confirmed.get(name, -1) >= targets[endpoint]:
                    continue
                if now - self._held[name].validated_ms >= min(LOCAL_FRESH_MS, key.ttl_ms or 0):
                    continue
                waiting.append(self._refreshing.get(name) or self._refresh_ahead(key, endpoint, variant, build))
            if not waiting:
                return
            await asyncio.gather(*waiting, return_exceptions=True)

    async def revalidated(self) -> None:
        """Wait until the background refreshes started so far (and any they lead to) are done (tests)."""
        while pending := list(self._refreshing.values()):
            await asyncio.gather(*pending, return_exceptions=True)

    def _servable(self, key: Key, now: int) -> Payload | None:
        """The held payload when Redis cannot say (down, or a peer is rebuilding): within the TTL class, or
        only within its near-cache window when a change made it stale."""
        held = self._held.get(key.name)
        if held is None:
            return None
        bound = min(LOCAL_FRESH_MS, key.ttl_ms or 0) if key.name in self._stale else (key.ttl_ms or 0)
        return held if now - held.validated_ms < bound else None

    def _hold(self, key: Key, endpoint: str, payload: Payload, generation: int) -> bool:
        """Keep ``payload``, confirmed or built from reads that began at ``generation`` of its endpoint;
        returns whether it is current (no change heard since)."""
        self._held[key.name] = payload
        self._confirmed[key.name] = generation
        current = self._generation.get(endpoint, 0) == generation
        if current:
            self._stale.discard(key.name)
        else:
            self._stale.add(key.name)
        return current

    def _refresh_ahead(self, key: Key, endpoint: str, variant: str, build: Builder) -> asyncio.Task[None]:
        self._how[key.name] = (key, endpoint, variant, build)
        task = asyncio.get_running_loop().create_task(self._refresh(key, endpoint, variant, build))
        self._refreshing[key.name] = task
        task.add_done_callback(lambda t, name=key.name: self._refreshed(name, t))
        return task

    async def _refresh(self, key: Key, endpoint: str, variant: str, build: Builder) -> None:
        now = self.rt.clock.now_ms()
        if not self.redis_usable(now):
            return  # requests after the window take the Redis-down way (step 3)
        try:
            payload = await self._from_redis(key, endpoint, now)
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

    async def _from_redis(self, key: Key, endpoint: str, now: int) -> Payload | None:
        generation = self._generation.get(endpoint, 0)
        etag = etag_of_header(await self.rt.redis.getrange(key.name, 0, HEADER_LEN - 1))
        if etag is None:
            return None
        held = self._held.get(key.name)
        if held is not None and held.etag == etag:
            held.validated_ms = now
            self._hold(key, endpoint, held, generation)
            return held
        payload = Payload.from_redis(await self.rt.redis.get(key.name), gzip_min=self.gzip_min, now_ms=now)
        if payload is not None:
            await self._prepare(payload)
            self._hold(key, endpoint, payload, generation)
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
        generation = self._generation.get(endpoint, 0)
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
                # class and not known stale: a stale key's readers are served by peek meanwhile, and
                # the listener waits for the new bytes), else its result
                held = self._held.get(key.name)
                if held is not None and key.name not in self._stale and \
                        self.rt.clock.now_ms() - held.validated_ms < (key.ttl_ms or 0):
                    return held
                waited = await self._wait_for_peer(key, endpoint)
                if waited is not None:
                    return waited
            payload = await self._build(endpoint, build)
            # a change heard while building may have committed after the build's reads: not written
            # back (others would confirm it for the TTL class) and held as stale, so it is rebuilt
            if self._hold(key, endpoint, payload, generation) and redis_ok:
                await self._write_back(key, endpoint, payload)
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
                payload = await self._from_redis(key, endpoint, self.rt.clock.now_ms())
            except RedisError as exc:
                self.redis_failed(endpoint, exc)
                return None
            if payload is not None:
                return payload
        return None

    async def _build(self, endpoint: str, build: Builder) -> Payload:
        started = time.perf_counter()
        started_ms = self.rt.clock.now_ms()  # the data is at least as new as the build's start
        await self._postgres_gate(endpoint)
        try:
            obj = await build()
        except POSTGRES_DOWN as exc:
            if not postgres_unreachable(exc):
                raise
            self.postgres.failed(exc, endpoint=endpoint)
            raise _unavailable() from exc
        payload = Payload.encode(obj, gzip_min=self.gzip_min, now_ms=started_ms)
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
