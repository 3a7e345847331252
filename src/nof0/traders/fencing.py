"""Fencing of the traders' writes (docs/scaling.md): an engine process holds a trader under a Redis lease
and every event it writes for that trader carries the lease's fencing token (a Redis INCR per lease
taken). In the write's transaction, ``trader_fencing`` keeps the highest token seen per trader (the row
lock orders concurrent writers); an event whose token is lower is refused: its process lost the lease
and another one now writes for the trader. Events without a token (imports, operator commands, the
single-process engine) are not fenced.

The engine fences whole batches too (``IngestService(fences=...)``: the tokens of the traders its
process holds): every event naming such a trader (cycles, messages, model calls, its state, its paper
orders, fills and balances) is refused once a newer token has written for it (:func:`stale_traders`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection

from nof0.kernel.stage import StageRejection
from nof0.traders import repository as repo

__all__ = ["fence_events", "stale_traders", "trader_named", "STALE_TOKEN"]

STALE_TOKEN = "stale fencing token"  # how every refusal of a stale writer starts (the engine stops its cycle on it)


def trader_named(event: Any) -> str | None:
    """The trader (model) an event writes for, if any."""
    return getattr(event, "trader_id", None) or getattr(event, "model_id", None)


async def stale_traders(conn: AsyncConnection, events: Sequence[Any], fences: Mapping[str, int]) -> dict[str, int]:
    """Advance the stored tokens of the fenced traders ``events`` name; returns those whose stored token
    is above ``fences``' (trader -> the newer token): their writers lost the lease."""
    named = sorted({t for e in events if (t := trader_named(e)) is not None and t in fences})
    if not named:
        return {}
    stored = await repo.advance_fences(conn, {t: fences[t] for t in named})
    return {t: stored[t] for t in named if stored[t] > fences[t]}


async def fence_events(conn: AsyncConnection, events: Sequence[Any], trader_of: Callable[[Any], str]
                       ) -> tuple[list[Any], list[StageRejection]]:
    """Split ``events`` into those allowed to write and the refusals of those with a stale token."""
    highest: dict[str, int] = {}
    for e in events:
        if e.fencing_token is not None:
            t = trader_of(e)
            highest[t] = max(highest.get(t, -1), e.fencing_token)
    if not highest:
        return list(events), []
    stored = await repo.advance_fences(conn, highest)
    ok, refused = [], []
    for e in events:
        t = trader_of(e)
        if e.fencing_token is None or e.fencing_token >= stored[t]:
            ok.append(e)
        else:
            refused.append(StageRejection(
                e, "fencing_token", e.fencing_token,
                f"{STALE_TOKEN} {e.fencing_token} for trader {t!r}: a newer lease (token {stored[t]}) "
                "writes for it now"))
    return ok, refused
