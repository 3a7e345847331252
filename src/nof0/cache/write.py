"""How values are written to Redis (design 3.3 "write-through", 3.4 "rebuild"): whole values replaced
atomically with their TTL, in one MULTI, so a reader never sees a half-written list or hash and every
key carries the TTL of its class.

:func:`multi` is the MULTI every writer opens: on one server it is ``pipeline(transaction=True)``; on a
Redis Cluster (no transaction spans slots) the queued commands are grouped by the slot of their key and
each group runs as its own MULTI, so each key (or each hash-tagged group, cache/keys.py) is still
replaced atomically; what is lost is only atomicity across owners, which no reader relies on.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import msgspec
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import Pipeline
from redis.crc import key_slot

from nof0.cache.keys import Key

__all__ = ["encode", "set_json", "replace_list", "replace_hash", "publish_lists", "multi", "SlotMulti"]

encode = msgspec.json.Encoder().encode


def set_json(pipe: Pipeline, key: Key, value: Any) -> None:
    pipe.set(key.name, encode(value), px=key.ttl_ms)


_RPUSH_CHUNK = 10_000  # values per RPUSH inside one MULTI: keeps each command a sane size


def replace_list(pipe: Pipeline, key: Key, values: Iterable[bytes]) -> None:
    """The list becomes exactly ``values`` (an empty list deletes the key)."""
    items = list(values)
    pipe.delete(key.name)
    if items:
        for i in range(0, len(items), _RPUSH_CHUNK):
            pipe.rpush(key.name, *items[i : i + _RPUSH_CHUNK])
        if key.ttl_ms:
            pipe.pexpire(key.name, key.ttl_ms)


def replace_hash(pipe: Pipeline, key: Key, mapping: Mapping[str, bytes | str]) -> None:
    """The hash becomes exactly ``mapping`` (an empty mapping deletes the key)."""
    pipe.delete(key.name)
    if mapping:
        pipe.hset(key.name, mapping=dict(mapping))
        if key.ttl_ms:
            pipe.pexpire(key.name, key.ttl_ms)


async def publish_lists(
    redis: Redis,
    key_of: Callable[[str], Key],
    owners: Iterable[str],
    rows: Iterable[Mapping[str, Any]],
    owner_field: str,
    render: Callable[[Mapping[str, Any]], Any],
) -> None:
    """Replace the list of each owner (a model, a trader) with its rows, rendered as JSON, in one MULTI.
    An owner without rows gets its list deleted."""
    lists: dict[str, list[bytes]] = {o: [] for o in owners}
    for row in rows:
        lists[row[owner_field]].append(encode(render(row)))
    pipe = multi(redis)
    for owner, items in lists.items():
        replace_list(pipe, key_of(owner), items)
    await pipe.execute()


def multi(redis: Redis | RedisCluster) -> Any:
    """A MULTI pipeline: one transaction on a single server, one per slot on a cluster."""
    return SlotMulti(redis) if isinstance(redis, RedisCluster) else redis.pipeline(transaction=True)


class SlotMulti:
    """Queues pipeline commands (``pipe.set(...)``, ``pipe.eval(script, n, key, ...)``) and runs them as one
    MULTI per cluster slot, in queue order within a slot; ``execute`` returns the replies in queue order."""

    def __init__(self, redis: RedisCluster) -> None:
        self._redis = redis
        self._queued: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, command: str) -> Callable[..., "SlotMulti"]:
        def queue(*args: Any, **kwargs: Any) -> "SlotMulti":
            self._queued.append((command, args, kwargs))
            return self

        return queue

    async def __aenter__(self) -> "SlotMulti":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._queued.clear()

    async def execute(self) -> list[Any]:
        by_slot: dict[int, list[int]] = {}
        for i, (command, args, _) in enumerate(self._queued):
            key = args[2] if command in ("eval", "evalsha") else args[0]  # eval(script, numkeys, key, ...)
            by_slot.setdefault(key_slot(key.encode() if isinstance(key, str) else key), []).append(i)
        replies: list[Any] = [None] * len(self._queued)
        for indexes in by_slot.values():
            pipe = self._redis.pipeline(transaction=True)
            for i in indexes:
                command, args, kwargs = self._queued[i]
                getattr(pipe, command)(*args, **kwargs)
            for i, reply in zip(indexes, await pipe.execute()):
                replies[i] = reply
        self._queued.clear()
        return replies
