"""How values are written to Redis (design 3.3 "write-through", 3.4 "rebuild"): whole values replaced
atomically with their TTL, in one MULTI, so a reader never sees a half-written list or hash and every
key carries the TTL of its class.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from nof0.cache.keys import Key

__all__ = ["encode", "set_json", "replace_list", "replace_hash", "publish_lists"]

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
    pipe = redis.pipeline(transaction=True)
    for owner, items in lists.items():
        replace_list(pipe, key_of(owner), items)
    await pipe.execute()
