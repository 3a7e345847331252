"""The contract between the ingestion service and the domain pipelines.

A pipeline *stage* writes one event type's events of a batch inside the batch's transaction and
says what changed; what Redis must learn is returned as *publishers* that the service runs after
commit (design 4.1: Postgres first, then Redis; 3.3: write-through, best effort). A stage may also
refuse events the store itself shows to be wrong (a close before its position's entry, a second open
position on a symbol): it returns them as rejections and the service records them like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from psycopg import AsyncConnection

if TYPE_CHECKING:  # the kernel sits below the composition root; only the type is needed here
    from nof0.runtime import Runtime

__all__ = ["Staged", "Publisher", "StageRejection"]

# publisher(rt, conn, items): reads the committed truth through ``conn`` and writes Redis.
Publisher = Callable[["Runtime", AsyncConnection, list[Any]], Awaitable[None]]


@dataclass(frozen=True)
class StageRejection:
    """A refusal found by a stage. ``event`` is the batch's event it is about (the service knows its line
    and text); when the refused fact is not that event but a stored one it revealed (a pending close
    found by its position), ``event_type`` and ``raw`` describe the refused fact."""

    event: Any
    field: str | None
    value: Any
    reason: str
    event_type: str | None = None
    raw: str | None = None


@dataclass
class Staged:
    """What a stage did: events that changed the store, events that were already stored, events it
    refused, the models whose facts changed, and what to publish (a publisher gets the items of every
    stage that asked for it, once)."""

    changed: int = 0
    duplicates: int = 0
    publish: dict[Publisher, list[Any]] = field(default_factory=dict)
    rejected: list[StageRejection] = field(default_factory=list)
    models: set[str] = field(default_factory=set)

    def then(self, publisher: Publisher, *items: Any) -> "Staged":
        self.publish.setdefault(publisher, []).extend(items)
        return self

    def merge(self, other: "Staged") -> "Staged":
        """Add what another stage did (counts, publishers, rejections, models) to this one."""
        self.changed += other.changed
        self.duplicates += other.duplicates
        for publisher, items in other.publish.items():
            self.then(publisher, *items)
        self.rejected += other.rejected
        self.models |= other.models
        return self
