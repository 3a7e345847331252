"""What writers changed, announced on a Redis Stream (``nof0:changes``) for every reader process to hear.

A writer never calls into the read side: after its commit (and its Redis publishes), the ingestion
service announces one :class:`Change` per event type that changed the store, with the models and
symbols it touched; the jobs announce what they republished (``views``, ``analytics``,
``leaderboard``, ``since_inception``). Every API process reads the stream (``nof0.api.listener``)
and drops the cached responses built from what changed, so processes started anywhere (``nof0
ingest``, ``nof0 import``, the engine, another host) reach every API at once.

An entry is small: fields ``kind``, ``models`` and ``symbols`` (JSON arrays of ids), ``data`` (JSON:
``null``, or for ``price_tick`` ``{symbol: latest price}`` of the batch); never a payload. The stream
is capped with ``XADD MAXLEN ~ ingest.changes_stream_maxlen``. Announcing is best effort, like every
Redis write after commit: an error is logged and counted, never raised (the cached responses then
age out with their TTL class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from nof0.cache.keys import Keyspace
from nof0.obs.logging import get_logger

if TYPE_CHECKING:  # the cache layer sits below the composition root; only the type is needed here
    from nof0.runtime import Runtime

__all__ = ["Change", "announce", "read_changes", "latest_change_id", "oldest_change_id", "JOB_KINDS", "MALFORMED"]

log = get_logger("nof0.cache.changes")

# What the jobs announce besides the event types (docs/events.md) of ingest.
JOB_KINDS = ("views", "analytics", "leaderboard", "since_inception")
MALFORMED = "malformed"  # the kind read_changes gives an entry it cannot decode

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Change:
    """One change: ``kind`` is the event type that changed the store (``price_tick``, ``fill``, ...) or a
    job's output (``views``, ``analytics``, ``leaderboard``, ``since_inception``); ``models`` and
    ``symbols`` what it touched; ``data`` a small summary (``price_tick``: ``{symbol: latest price}``)."""

    kind: str
    models: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    data: dict | None = None


def _fields(change: Change) -> dict[str, bytes | str]:
    return {"kind": change.kind, "models": _encode(list(change.models)), "symbols": _encode(list(change.symbols)),
            "data": _encode(change.data)}


def _change(fields: dict[bytes, bytes]) -> Change:
    data = _decode(fields.get(b"data", b"null"))
    return Change(
        kind=fields[b"kind"].decode(),
        models=tuple(_decode(fields.get(b"models", b"[]"))),
        symbols=tuple(_decode(fields.get(b"symbols", b"[]"))),
        data=data if isinstance(data, dict) else None,
    )


async def announce(rt: Runtime, changes: Iterable[Change]) -> None:
    """One XADD per change, in one pipeline; call after the commit. Never raises for Redis."""
    items = list(changes)
    if not items:
        return
    stream = rt.keys.changes_stream().name
    maxlen = rt.config.root.ingest.changes_stream_maxlen
    try:
        pipe = rt.redis.pipeline(transaction=False)
        for change in items:
            pipe.xadd(stream, _fields(change), maxlen=maxlen, approximate=True)
        await pipe.execute()
    except (RedisError, OSError) as exc:
        rt.metrics.redis_write_errors.labels("changes").inc()
        log.warning("announcing changes failed; cached API responses age out with their TTL",
                    kinds=sorted({c.kind for c in items}), error=str(exc))


async def read_changes(redis: Redis, keys: Keyspace, after_id: str, *, block_ms: int, count: int
                       ) -> list[tuple[str, Change]]:
    """The changes after entry ``after_id`` (``'$'``: only those announced from now on), oldest first, at
    most ``count``; waits up to ``block_ms`` for one when there is none (0: does not wait). Each entry id
    is the resume point of the next read. An entry that cannot be decoded is logged and comes back as
    ``Change(MALFORMED)``, so a reader still moves past it."""
    stream = keys.changes_stream().name
    answer = await redis.xread({stream: after_id}, count=count, block=block_ms if block_ms > 0 else None)
    out: list[tuple[str, Change]] = []
    for _name, entries in answer or ():
        for entry_id, fields in entries:
            eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            try:
                out.append((eid, _change(fields)))
            except (KeyError, UnicodeDecodeError, msgspec.DecodeError, TypeError) as exc:
                log.warning("malformed change entry", stream=stream, entry=eid, error=repr(exc))
                out.append((eid, Change(MALFORMED)))
    return out


async def latest_change_id(redis: Redis, keys: Keyspace) -> str:
    """The id of the newest entry (``'0-0'`` when there is none): a reader that starts from it hears every
    change announced after this call, with no gap between this call and its first read."""
    newest: Any = await redis.xrevrange(keys.changes_stream().name, count=1)
    if not newest:
        return "0-0"
    entry_id = newest[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def oldest_change_id(redis: Redis, keys: Keyspace) -> str | None:
    """The id of the oldest entry still held (the cap trims older ones), or None when there is none: a
    reader whose last id is older may have missed entries."""
    oldest: Any = await redis.xrange(keys.changes_stream().name, count=1)
    if not oldest:
        return None
    entry_id = oldest[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
