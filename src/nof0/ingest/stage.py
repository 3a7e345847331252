"""The contract between the ingestion service and the domain pipelines.

A pipeline *stage* writes one event type's events of a batch inside the batch's transaction and
says what changed; what Redis must learn is returned as *publishers* that the service runs after
commit (design 4.1: Postgres first, then Redis; 3.3: write-through, best effort).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from psycopg import AsyncConnection

from nof0.runtime import Runtime

__all__ = ["Staged", "Publisher"]

# publisher(rt, conn, items): reads the committed truth through ``conn`` and writes Redis.
Publisher = Callable[[Runtime, AsyncConnection, list[Any]], Awaitable[None]]


@dataclass
class Staged:
    """What a stage did: events that changed the store, events that were already stored, and
    what to publish (a publisher gets the items of every stage that asked for it, once)."""

    changed: int = 0
    duplicates: int = 0
    publish: dict[Publisher, list[Any]] = field(default_factory=dict)

    def then(self, publisher: Publisher, *items: Any) -> "Staged":
        self.publish.setdefault(publisher, []).extend(items)
        return self
