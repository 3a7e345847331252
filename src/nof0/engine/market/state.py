"""The latest market picture of one provider, held in memory by the process that runs its feed.

The feed updates it from every ``Mids`` and ``MarketSnapshot`` it ingests; the sim exchange reads
marks, asset metadata and funding from it, and the executor reads it for what the store does not
hold yet. Listeners (``subscribe``) run after each update, in order, so the sim exchange fills
resting orders, fires triggers and liquidates on the same tick the store learns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nof0.engine.market.provider import AssetContext, AssetInfo, MarketSnapshot, Mids

__all__ = ["MarketState", "MidsListener"]

MidsListener = Callable[[Mids], Awaitable[None]]


class MarketState:
    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.marks: dict[str, float] = {}
        self.assets: dict[str, AssetInfo] = {}
        self.contexts: dict[str, AssetContext] = {}
        self.last_mids_ms = 0
        self.last_snapshot_ms = 0
        self._listeners: list[MidsListener] = []

    def mark(self, symbol: str) -> float | None:
        return self.marks.get(symbol)

    def asset(self, symbol: str) -> AssetInfo | None:
        return self.assets.get(symbol)

    def context(self, symbol: str) -> AssetContext | None:
        return self.contexts.get(symbol)

    def subscribe(self, listener: MidsListener) -> None:
        self._listeners.append(listener)

    def apply_snapshot(self, snap: MarketSnapshot) -> bool:
        """Take a newer snapshot; True when any asset's metadata changed (limits must be recomputed)."""
        if snap.ts_ms < self.last_snapshot_ms:
            return False
        changed = snap.assets != {k: self.assets.get(k) for k in snap.assets}
        self.assets.update(snap.assets)
        self.contexts.update(snap.contexts)
        for symbol, ctx in snap.contexts.items():
            self.marks.setdefault(symbol, ctx.mark_px)
        self.last_snapshot_ms = snap.ts_ms
        return changed

    async def apply_mids(self, mids: Mids) -> None:
        if mids.ts_ms < self.last_mids_ms:
            return  # an older frame (a gap fill racing the stream) never moves a mark back
        self.marks.update(mids.prices)
        self.last_mids_ms = mids.ts_ms
        for listener in self._listeners:
            await listener(mids)
