"""A market feed: runs one provider, keeps its ``MarketState`` current and writes what it observes through
``IngestService`` in batches (engine.md "Market providers"; design 2.4 "Prices" and "Market Metadata").

* At start: the provider's symbols are registered (``symbol`` events, so no tick is ever refused for an
  unknown symbol), then a snapshot (``metaAndAssetCtxs``) is taken; another one every
  ``meta_poll_interval``. Each goes to the state and, as a ``market_meta`` event, to the store.
* ``stream()`` is consumed: each ``Mids`` updates the state at once (the sim exchange and the traders read
  it) and joins the write buffer as one ``price_tick`` per symbol, with the provider's name as ``source``.
* One writer commits the buffer: a batch holds at most ``batch_size`` ticks; a tick arriving at an idle
  writer waits at most ``batch_linger`` for others, and while a batch is being written the next one fills
  and goes as soon as the write ends, so the batch size follows the tick rate. A failed write (Postgres away) is retried with backoff, its ticks kept (up to
  ``max_buffer``; beyond that the oldest are dropped, logged and counted).
* No price update for ``stale_after`` (by the runtime's clock, at receipt): logged once per episode and
  counted (``nof0_market_stale_total``); the first update after it logs the recovery.

The feed never writes SQL or Redis itself, and nothing a provider does (an exception included) stops it:
a failed snapshot is logged and tried again at the next poll, a failed stream restarted after a backoff.
Metrics: ``nof0_market_ticks_total``, ``nof0_market_lag_seconds`` (observation to commit),
``nof0_market_last_tick_timestamp``, ``nof0_market_errors_total{operation}``, plus the provider's own
(reconnects, gaps, skipped data).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from nof0.config import MarketProvider as ProviderConfig
from nof0.engine.market.provider import MarketProvider, MarketSnapshot, Mids
from nof0.engine.market.state import MarketState
from nof0.engine.market.timing import Backoff, Sleep
from nof0.ingest.service import IngestService
from nof0.kernel.events import AssetCtx, MarketMeta, PriceTick, SymbolEvent, UniverseEntry, UniverseMeta
from nof0.kernel.report import IngestReport
from nof0.obs.logging import get_logger, joined, log_scope
from nof0.runtime import Runtime

__all__ = ["Feed", "FeedSettings", "FeedStats", "market_meta_event"]

log = get_logger("nof0.engine.market.feed")
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class FeedSettings:
    batch_size: int = 1000
    batch_linger_s: float = 0.005
    meta_poll_s: float = 60.0
    stale_after_s: float = 30.0
    max_buffer: int = 500_000  # ticks held while the store is away
    retry_min_s: float = 0.5
    retry_max_s: float = 30.0
    drain_s: float = 5.0  # at shutdown, how long buffered ticks may take to be written

    @classmethod
    def from_config(cls, cfg: ProviderConfig) -> "FeedSettings":
        return cls(batch_size=cfg.batch_size, batch_linger_s=cfg.batch_linger, meta_poll_s=cfg.meta_poll_interval,
                   stale_after_s=cfg.stale_after)


@dataclass
class FeedStats:
    ticks_written: int = 0
    batches: int = 0
    snapshots_written: int = 0
    ticks_dropped: int = 0
    stale_episodes: int = 0
    stale: bool = False
    last_ts_ms: int = 0  # the newest tick time written


def _text(x: float) -> str:
    return repr(float(x))  # the shortest text that reads back as the same double


def market_meta_event(provider: str, snap: MarketSnapshot) -> tuple[MarketMeta | None, list[str]]:
    """The ``market_meta`` event of a snapshot (Hyperliquid's shape, numbers as strings), and the symbols
    left out because their context lacks a number the event requires."""
    universe, ctxs, left_out = [], [], []
    for symbol, asset in snap.assets.items():
        ctx = snap.contexts.get(symbol)
        if ctx is None or None in (ctx.prev_day_px, ctx.day_ntl_vlm, ctx.oracle_px):
            left_out.append(symbol)
            continue
        universe.append(UniverseEntry(name=symbol, szDecimals=asset.sz_decimals, maxLeverage=asset.max_leverage,
                                      onlyIsolated=asset.only_isolated, marginTableId=asset.margin_table_id,
                                      isDelisted=asset.is_delisted))
        ctxs.append(AssetCtx(
            funding=_text(ctx.funding), openInterest=_text(ctx.open_interest), prevDayPx=_text(ctx.prev_day_px),
            dayNtlVlm=_text(ctx.day_ntl_vlm), premium=None if ctx.premium is None else _text(ctx.premium),
            oraclePx=_text(ctx.oracle_px), markPx=_text(ctx.mark_px),
            midPx=None if ctx.mid_px is None else _text(ctx.mid_px),
            impactPxs=None if ctx.impact_pxs is None else [_text(p) for p in ctx.impact_pxs],
            dayBaseVlm=None if ctx.day_base_vlm is None else _text(ctx.day_base_vlm),
        ))
    if not universe:
        return None, left_out
    return MarketMeta(provider=provider, ts_ms=snap.ts_ms, meta_and_asset_ctxs=(UniverseMeta(universe=universe), ctxs)
                      ), left_out


class Feed:
    def __init__(self, rt: Runtime, provider: MarketProvider, state: MarketState,
                 settings: FeedSettings | None = None, *, ingest: IngestService | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.rt = rt
        self.provider = provider
        self.state = state
        self.settings = settings or FeedSettings()
        self.name = provider.name
        self.ingest = ingest or IngestService(rt, batch_size=max(self.settings.batch_size, len(provider.symbols) + 1))
        self.stats = FeedStats()
        self._sleep = sleep
        self._buffer: deque[Mids] = deque()
        self._buffered = 0
        self._have = asyncio.Event()
        self._full = asyncio.Event()
        self._draining = False
        self._last_update_ms = 0
        self._changed = asyncio.Condition()
        self._m = rt.metrics

    # ------------------------------------------------------------------ for tests and callers
    async def wait_for(self, predicate: Callable[[FeedStats], bool], timeout: float = 30.0) -> None:
        """Until ``predicate(stats)`` holds (checked after every commit, snapshot and stale change)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.stats)), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ run
    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set (or a finite stream, a replay, has ended and been written)."""
        log.info("market feed starting", provider=self.name, symbols=list(self.provider.symbols))
        self._draining = False
        await self.provider.start()
        try:
            if not await self._until_done(stop, self._register()):
                return
            self._last_update_ms = self.rt.clock.now_ms()
            await self._until_done(stop, self.refresh_snapshot())
            if stop.is_set():
                return
            writer = asyncio.create_task(self._write_loop(), name=f"feed-writer:{self.name}")
            helpers = [asyncio.create_task(self._poll_loop(), name=f"feed-poll:{self.name}"),
                       asyncio.create_task(self._watch_loop(), name=f"feed-watch:{self.name}")]
            consumer = asyncio.create_task(self._consume(), name=f"feed-stream:{self.name}")
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({consumer, stopping, writer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (consumer, stopping, *helpers):
                    task.cancel()
                await asyncio.gather(consumer, stopping, *helpers, return_exceptions=True)
                self._draining = True  # the writer commits what the stream delivered, then ends
                self._have.set()
                self._full.set()
                if stop.is_set():  # shutting down: a few seconds to write what is buffered
                    await asyncio.wait({writer}, timeout=self.settings.drain_s)
                else:  # the stream ended (a replay): all of it is written, unless a stop comes first
                    stopping = asyncio.create_task(stop.wait())
                    await asyncio.wait({writer, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                writer.cancel()
                outcome = (await asyncio.gather(writer, return_exceptions=True))[0]
                if isinstance(outcome, Exception):
                    log.error("market feed writer failed", provider=self.name, error=repr(outcome))
        finally:
            with contextlib.suppress(Exception):
                await self.provider.close()
            log.info("market feed stopped", provider=self.name, ticks=self.stats.ticks_written,
                     batches=self.stats.batches, snapshots=self.stats.snapshots_written)

    async def _until_done(self, stop: asyncio.Event, work: Any) -> bool:
        """Run ``work`` unless ``stop`` comes first; True when it completed."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False
        task.result()
        return True

    async def _register(self) -> None:
        """Every symbol the provider serves is a registered instrument before any of its ticks."""
        if not self.provider.symbols:
            return
        events = [SymbolEvent(symbol=s) for s in self.provider.symbols]
        await self._retrying("register", lambda: self.ingest.ingest(events, source=f"feed:{self.name}"))

    async def _retrying(self, operation: str, write: Callable[[], Any]) -> IngestReport:
        backoff = Backoff(self.settings.retry_min_s, self.settings.retry_max_s)
        while True:
            try:
                return await write()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store away (or any write error) must not end the feed
                self._m.market_errors.labels(self.name, operation).inc()
                delay = backoff.next()
                log.warning("market feed write failed; retrying", provider=self.name, operation=operation,
                            error=repr(exc), in_s=round(delay, 3))
                await self._sleep(delay)

    # ------------------------------------------------------------------ snapshots
    async def refresh_snapshot(self) -> bool:
        """One snapshot into the state and the store; False (logged, counted) when the provider failed."""
        try:
            snap = await self.provider.snapshot()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a venue error must never stop the feed
            self._m.market_errors.labels(self.name, "snapshot").inc()
            log.warning("market snapshot failed; trying again at the next poll", provider=self.name, error=str(exc))
            return False
        if self.state.apply_snapshot(snap):
            log.info("market metadata changed", provider=self.name, symbols=sorted(snap.assets))
        event, left_out = market_meta_event(self.name, snap)
        if left_out:
            self._m.market_skipped.labels(self.name, "incomplete_context").inc(len(left_out))
            log.warning("asset contexts without the numbers market_meta requires", provider=self.name,
                        symbols=left_out)
        if event is not None:
            report = await self._retrying("snapshot_write",
                                          lambda: self.ingest.ingest([event], source=f"feed:{self.name}"))
            self._log_rejections(report)
            self.stats.snapshots_written += 1
            await self._notify()
        return True

    async def _poll_loop(self) -> None:
        while True:
            await self._sleep(self.settings.meta_poll_s)
            await self.refresh_snapshot()

    # ------------------------------------------------------------------ the stream
    async def _consume(self) -> None:
        backoff = Backoff(self.settings.retry_min_s, self.settings.retry_max_s)
        while True:
            try:
                async for mids in self.provider.stream():
                    await self._take(mids)
                    backoff.reset()
                return  # a finite stream (a replay) has ended
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a provider bug must not end the feed
                self._m.market_errors.labels(self.name, "stream").inc()
                delay = backoff.next()
                log.error("market stream failed; restarting it", provider=self.name, error=repr(exc),
                          in_s=round(delay, 3))
                await self._sleep(delay)

    async def _take(self, mids: Mids) -> None:
        if not mids.prices:
            return
        self._last_update_ms = self.rt.clock.now_ms()
        try:
            await self.state.apply_mids(mids)
        except Exception as exc:  # noqa: BLE001 - a listener's failure is its own; the prices still go to the store
            self._m.market_errors.labels(self.name, "listener").inc()
            log.error("market state listener failed", provider=self.name, error=repr(exc))
        self._buffer.append(mids)
        self._buffered += len(mids.prices)
        while self._buffered > self.settings.max_buffer and len(self._buffer) > 1:
            dropped = self._buffer.popleft()
            self._buffered -= len(dropped.prices)
            self.stats.ticks_dropped += len(dropped.prices)
            self._m.market_errors.labels(self.name, "dropped").inc(len(dropped.prices))
            log.warning("market feed buffer full; oldest ticks dropped", provider=self.name,
                        ticks=len(dropped.prices), ts_ms=dropped.ts_ms)
        self._have.set()
        if self._buffered >= self.settings.batch_size:
            self._full.set()

    # ------------------------------------------------------------------ the writer
    def _next_batch(self) -> list[Mids]:
        batch, ticks = [], 0
        while self._buffer and (not batch or ticks + len(self._buffer[0].prices) <= self.settings.batch_size):
            mids = self._buffer.popleft()
            batch.append(mids)
            ticks += len(mids.prices)
        self._buffered -= ticks
        if self._buffered < self.settings.batch_size:
            self._full.clear()
        return batch

    async def _write_loop(self) -> None:
        while True:
            if not self._buffer:
                if self._draining:
                    return
                self._have.clear()
                await self._have.wait()
                if not self._buffer:
                    continue
                # woken from idle by a first tick: let a few more join it (after a write, what piled up
                # meanwhile goes at once: lingering then would only add to every tick's latency)
                if self._buffered < self.settings.batch_size and not self._draining:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), self.settings.batch_linger_s)
            batch = self._next_batch()
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                self._buffer.extendleft(reversed(batch))  # kept for a later writer of this feed
                self._buffered += sum(len(m.prices) for m in batch)
                raise

    async def _write(self, batch: list[Mids]) -> None:
        with log_scope(source=f"feed:{self.name}", source_event="price_tick",
                       symbol=joined(s for m in batch for s in m.prices)):
            await self._write_scoped(batch)

    async def _write_scoped(self, batch: list[Mids]) -> None:
        # as JSON lines: ingest decodes a line in one typed pass, several times cheaper than re-validating
        # an in-process record (the same checks either way)
        encode = _ENCODER.encode
        events = [(f"{s} at {m.ts_ms}", encode(PriceTick(symbol=s, price=p, ts_ms=m.ts_ms, source=self.name)))
                  for m in batch for s, p in m.prices.items()]
        report = await self._retrying(
            "write", lambda: self.ingest.ingest_located(events, source=f"feed:{self.name}"))
        self._log_rejections(report)
        now = self.rt.clock.now_ms()
        lag = self._m.market_lag_seconds.labels(self.name)
        for m in batch:
            lag.observe(max(0, now - m.ts_ms) / 1000)
        newest = max(m.ts_ms for m in batch)
        self._m.market_ticks.labels(self.name).inc(len(events))
        self.stats.last_ts_ms = max(self.stats.last_ts_ms, newest)
        self._m.market_last_tick.labels(self.name).set(self.stats.last_ts_ms / 1000)
        self.stats.ticks_written += len(events)
        self.stats.batches += 1
        log.debug("market batch committed", provider=self.name, ticks=len(events), newest_ts_ms=newest,
                  stored=report.by_type.get("price_tick", {}).get("accepted", 0))
        await self._notify()

    def _log_rejections(self, report: IngestReport) -> None:
        if report.rejections:
            self._m.market_errors.labels(self.name, "rejected").inc(len(report.rejections))
            log.warning("market events rejected by ingest", provider=self.name, rejected=len(report.rejections),
                        first=str(report.rejections[0]))

    # ------------------------------------------------------------------ staleness
    async def _watch_loop(self) -> None:
        interval = max(0.001, min(self.settings.stale_after_s / 4, 5.0))
        while True:
            await self._sleep(interval)
            age_s = (self.rt.clock.now_ms() - self._last_update_ms) / 1000
            if age_s > self.settings.stale_after_s and not self.stats.stale:
                self.stats.stale = True
                self.stats.stale_episodes += 1
                self._m.market_stale.labels(self.name).inc()
                log.warning("market feed stale", provider=self.name, no_update_for_s=round(age_s, 1))
                await self._notify()
            elif age_s <= self.settings.stale_after_s and self.stats.stale:
                self.stats.stale = False
                log.info("market feed fresh again", provider=self.name)
                await self._notify()
