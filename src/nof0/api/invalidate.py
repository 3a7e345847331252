"""Drop cached API responses after a write, so the next request rebuilds them (design 3.3 write-through).

Cached responses (``nof0:api:{endpoint}:{variant}``) otherwise live for their TTL class. For the API's
own use: writers never call this, they announce what they changed (``cache.changes``) and each API
process's listener (``listener.py``) calls ``invalidate_api_payloads(rt, ["trades", ...])``. Best
effort like every Redis write after commit: an error is logged and counted, never raised. Other API
processes that only read Redis notice within ``read_path.LOCAL_FRESH_MS``.
"""

from __future__ import annotations

from typing import Iterable

from redis.exceptions import RedisError

from nof0.api.sources import ALL_VARIANT
from nof0.api.spec import ALL_SPECS
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["invalidate_api_payloads"]

log = get_logger("nof0.api.invalidate")


async def invalidate_api_payloads(rt: Runtime, endpoints: Iterable[str] = tuple(ALL_SPECS)) -> int:
    """Delete the cached responses of ``endpoints`` (per-model analytics included); returns keys deleted."""
    names = list(endpoints)
    unknown = [n for n in names if n not in ALL_SPECS]
    if unknown:
        raise ValueError(f"unknown endpoint(s): {', '.join(unknown)} (known: {', '.join(ALL_SPECS)})")
    keys = [rt.keys.api_payload(n, ALL_VARIANT, ALL_SPECS[n].ttl_class).name for n in names]
    try:
        if "analytics" in names:  # one key per model asked for: found by pattern
            pattern = rt.keys.api_payload_scan("analytics")
            keys += [k.decode() async for k in rt.redis.scan_iter(match=pattern, count=500)]
        return int(await rt.redis.delete(*set(keys))) if keys else 0
    except RedisError as exc:
        rt.metrics.redis_write_errors.labels("api_invalidate").inc()
        log.warning("api cache invalidation failed", endpoints=names, error=str(exc))
        return 0
