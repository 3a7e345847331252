"""A market provider whose stream yields what the test puts in its queue (a test double of a venue, not of
the store): ``None`` ends the stream, an exception is raised from it."""

from __future__ import annotations

import asyncio

from nof0.engine.market.provider import MarketSnapshot, Mids


class ScriptedMarket:
    def __init__(self, name: str, symbols, snapshot: MarketSnapshot | None = None) -> None:
        self.name = name
        self.symbols = tuple(symbols)
        self.snap = snapshot
        self.snapshot_errors: list[Exception] = []
        self.queue: asyncio.Queue = asyncio.Queue()
        self.snapshots = 0
        self.streams = 0
        self.closed = False

    async def start(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def mids(self) -> Mids:
        # the feed takes prices from stream() and gap-fills only after a reconnect, which a scripted
        # stream never does: a call here is a feed bug the test must report
        raise AssertionError("the feed asked a scripted provider for REST mids")

    async def snapshot(self) -> MarketSnapshot:
        self.snapshots += 1
        if self.snapshot_errors:
            raise self.snapshot_errors.pop(0)
        if self.snap is None:
            raise RuntimeError("no snapshot scripted")
        return self.snap

    async def candles(self, symbol, interval, start_ms, end_ms):
        return []

    async def stream(self):
        self.streams += 1
        while True:
            item = await self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
