"""The ingestion service (design 2.4, 4.1, 4.2): the one entry point for everything that produces
data: the engine, the importer and ``nof0 ingest``.

Events are validated at the edge (``decode``), checked for references (``references``) and written
in batches: each batch is one Postgres transaction holding every write of its events, the stages
running in a fixed order (registrations first, then prices, market metadata, positions, fills,
trades, equity, conversations, trader state, simulator). After commit the stages' publishers write
Redis, best effort (an error is logged and counted, never raised); the batch's changes are announced
on the changes stream (``cache.changes``: one entry per event type that changed the store, with the
models and symbols it touched), for every API process to drop what it cached; then ``on_committed``
callbacks learn which event types changed the store.

Rejected events never stop a batch: they are recorded in ``ingest_dead_letters`` in the same
transaction and reported, each named where its producer would look for it (``line 4`` of a file,
``event 2`` of an in-process list, ``trades.json trades[12]`` of an import). A stage may refuse events
the store shows to be wrong (``Staged.rejected``); a database error caused by one event (a constraint
no validator anticipated) makes the batch retry in halves until that event stands alone and is
rejected: about 2 log2(n) extra transactions for a batch of n, never one per event. An event the
validators can tell is wrong never gets this far (``nof0_ingest_batch_splits_total`` counts splits).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import itertools
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from operator import attrgetter
from typing import Any, NamedTuple

import psycopg
from psycopg import AsyncConnection

from nof0.cache.changes import Change, announce
from nof0.conversations.pipeline import stage_decision_cycles, stage_messages
from nof0.kernel.decode import Rejected, Rejection, decode_line, encode_event, validate_event
from nof0.kernel.events import PriceTick
from nof0.kernel.lines import HEAD_BYTES, MAX_LINE_BYTES, OverlongLine
from nof0.ingest.references import References, group_by_type
from nof0.kernel.report import IngestReport
from nof0.ingest.repository import insert_dead_letters
from nof0.kernel.stage import Publisher, Staged
from nof0.llm_calls.pipeline import stage_llm_calls
from nof0.market.pipeline import stage_market_meta, stage_symbols
from nof0.obs.logging import get_logger, joined, log_scope
from nof0.prices.pipeline import stage_ticks
from nof0.runtime import Runtime
from nof0.sim.pipeline import stage_sim_balances, stage_sim_orders
from nof0.trades.pipeline import stage_equity_snapshots, stage_fills, stage_trades
from nof0.trades.positions import stage_position_closes, stage_positions
from nof0.traders.fencing import STALE_TOKEN, stale_traders, trader_named
from nof0.traders.pipeline import stage_models, stage_trader_states

__all__ = ["IngestService", "IngestReport", "Entry", "STAGES"]

log = get_logger("nof0.ingest")

Stage = Callable[[Runtime, AsyncConnection, list[Any]], Awaitable[Staged]]

# The order in which one batch's events are written (registrations first: later stages rely on them;
# closes before positions: a position settles against every close recorded so far, its batch's included).
STAGES: tuple[tuple[str, Stage], ...] = (
    ("model", stage_models),
    ("symbol", stage_symbols),
    ("market_meta", stage_market_meta),
    ("price_tick", stage_ticks),
    ("position_close", stage_position_closes),
    ("position", stage_positions),
    ("fill", stage_fills),
    ("trade", stage_trades),
    ("equity_snapshot", stage_equity_snapshots),
    ("conversation_message", stage_messages),
    ("decision_cycle", stage_decision_cycles),
    ("llm_call", stage_llm_calls),
    ("trader_state", stage_trader_states),
    ("sim_order", stage_sim_orders),
    ("sim_balance", stage_sim_balances),
)

# Errors an event's data can cause in Postgres (as opposed to a lost connection): isolate the event.
# Program limits (an index row too large, ...) are data errors too: one value too big for the server.
# Lines decoded between two steps of the batch in flight (about a millisecond of decoding).
_SLICE = 500
# Writes started and not yet ended: two tick batches' transactions in flight at once, or one batch in
# flight and the next one decoded and waiting for it.
_AHEAD = 2

_DATA_ERRORS = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded)


class Entry(NamedTuple):
    """A validated event of a batch and where it came from (a tuple, and its name and text made only
    when a rejection needs them: a batch holds thousands)."""

    line: int | None  # its number in the input (recorded with a dead letter)
    event: Any
    raw: str | bytes | None  # as received (bytes: a line read as bytes); None for in-process events
    named: str | None = None  # its name when not "line N" ("event 2", "trades.json trades[12]")

    @property
    def where(self) -> str:
        """How a rejection names it: "line 4", "event 2", "trades.json trades[12]"."""
        return self.named or f"line {self.line}"

    def text(self) -> str:
        if self.raw is None:
            return encode_event(self.event).decode()
        if isinstance(self.raw, bytes):  # valid UTF-8: the decoder accepted it
            return self.raw.rstrip(b"\r\n").decode("utf-8")
        return self.raw


class IngestService:
    """``await IngestService(rt).ingest(events)`` or ``.ingest_lines(lines, source=...)``."""

    def __init__(self, rt: Runtime, *, batch_size: int | None = None, linger_s: float = 0.2,
                 fences: Mapping[str, int] | None = None) -> None:
        self.rt = rt
        # the fencing tokens of the traders this process holds (docs/scaling.md): every write naming one
        # of them is refused when a newer holder has written for it
        self.fences = fences if fences is not None else {}
        self.batch_size = batch_size or rt.config.root.ingest.tick_batch_size
        self.linger_s = linger_s  # a live stream flushes a partial batch after this much silence
        self.on_committed: list[Callable[[set[str]], Awaitable[None]]] = []
        self._references = References(rt.config)

    # ------------------------------------------------------------------ entry points
    async def ingest(self, events: Iterable[Any], *, source: str = "api") -> IngestReport:
        """In-process events (typed records); each is validated like a decoded line and named ``event N``."""
        return await self.ingest_located(((f"event {n}", ev) for n, ev in enumerate(events, 1)), source=source)

    async def ingest_located(self, entries: Iterable[tuple[str, Any] | Rejection], *, source: str) -> IngestReport:
        """Events named by their place in the producer's own input (``manager.yaml traders[0]``,
        ``trades.json trades[12]``): each ``(where, event)`` holds a typed record or a JSON text line. A
        :class:`Rejection` the producer made itself (a malformed entry of its input) is recorded as is."""

        def items() -> Iterator[Entry | Rejection]:
            for n, entry in enumerate(entries, 1):
                if isinstance(entry, Rejection):
                    yield entry
                    continue
                where, payload = entry
                if isinstance(payload, (str, bytes, OverlongLine)):
                    decoded = _decode((n, payload), where)
                    if decoded is not None:
                        yield decoded
                    continue
                try:
                    yield Entry(n, validate_event(payload, n), None, where)
                except Rejected as exc:
                    yield dataclasses.replace(exc.rejection, where=where)

        return await self._run_overlapped(items(), source)

    async def ingest_lines(
        self, lines: Iterable[str | bytes | OverlongLine] | AsyncIterable[str | bytes | OverlongLine], *,
        source: str, start_line: int = 1,
    ) -> IngestReport:
        """JSON Lines (blank lines skipped). An async iterable is a live stream: batches flush when full
        or after ``linger_s`` without a new line."""
        if isinstance(lines, AsyncIterable):
            numbered = _anumbered(lines, start_line)
            return await self._run(_achunks(numbered, self.batch_size, self.linger_s, _decode), source)
        return await self._run_overlapped(map(_decode, enumerate(lines, start_line)), source)

    # ------------------------------------------------------------------ batches
    async def _run(self, batches: AsyncIterator[list[Any]], source: str) -> IngestReport:
        report = IngestReport()
        async for batch in batches:
            await self._commit(batch, source, report)
        return report

    async def _run_overlapped(self, items: Iterable[Entry | Rejection | None], source: str) -> IngestReport:
        """Batches of ``batch_size`` decoded items (None: a blank line) of an input at hand, at most
        ``_AHEAD`` writes started at once: decoding goes in slices and yields to the event loop between
        them, so the writes in flight move on (their COPY running in Postgres) meanwhile.

        A batch's write starts after the one before it ended (a failed write fails every later one
        unwritten), except that two batches of ticks may be in flight together (``_commit_after``): with
        one write at a time the next batch's decoding was done during the short round trips before the
        COPY and Python then sat idle through it (measured: Python CPU + Postgres CPU = wall time). What
        follows a commit (publishes, changes, listeners) always runs in input order. The input stops at
        the first failure once the writes in flight ended."""
        report = IngestReport()
        it = iter(items)
        batch: list[Entry | Rejection] = []
        writes: collections.deque[asyncio.Future[None]] = collections.deque()  # in input order
        ticks_before = False  # the last batch written held ticks only

        def write(batch: list[Entry | Rejection]) -> None:
            nonlocal ticks_before
            ticks = _ticks_only(batch)
            writes.append(asyncio.ensure_future(self._commit_after(
                writes[-1] if writes else None, batch, source, report, overlap=ticks and ticks_before)))
            ticks_before = ticks

        failure: BaseException | None = None
        try:
            while chunk := list(itertools.islice(it, min(_SLICE, self.batch_size - len(batch)))):
                batch += [d for d in chunk if d is not None]
                if len(batch) >= self.batch_size:
                    while writes and writes[0].done():
                        writes.popleft().result()  # raises a failed write's error: stop the input
                    if len(writes) >= _AHEAD:
                        await writes.popleft()
                    write(batch)
                    batch = []
                await asyncio.sleep(0)  # the batch in flight takes its next step
            if batch:
                write(batch)
            while writes:
                await writes.popleft()
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if writes:  # the input or a write failed: let the writes in flight end (later ones fail unwritten)
                await asyncio.wait(writes)
                errors = {id(e): e for w in writes if not w.cancelled() and (e := w.exception()) is not None}
                errors.pop(id(failure), None)
                if errors:
                    log.warning("a batch in flight failed too", error=repr(next(iter(errors.values()))))
        return report

    async def _commit_after(self, before: asyncio.Future[None] | None, batch: list[Entry | Rejection], source: str,
                            report: IngestReport, overlap: bool) -> None:
        if before is None:
            await self._commit(batch, source, report)
        elif overlap:
            # Two batches of ticks in flight: this one's transaction (its Python and its COPY) runs beside the
            # one before it, which is what keeps both Python and Postgres busy (alone, each waited for the
            # other half of the time). Safe for ticks only: they register nothing (so the references this one
            # checks cannot wait on the batch before), each tick is keyed on its own, a key both batches hold
            # waits on the unique index and falls back to the staged insert, and the price_latest rows they
            # share are locked until the earlier batch commits. What must stay in input order — the Redis
            # publish of the prices this transaction read, the changes stream, the listeners — waits for the
            # batch before to have done all of it (the turn).
            await self._commit(batch, source, report, turn=before)
        else:
            await asyncio.shield(before)  # its error is ours: a batch is never written after one that failed
            await self._commit(batch, source, report)

    async def _commit(self, batch: list[Entry | Rejection], source: str, report: IngestReport,
                      turn: asyncio.Future[None] | None = None) -> None:
        """Write one batch; with a ``turn`` (the batch before, still in flight), its transaction runs now and
        what follows the commit waits for the batch before to have ended."""
        rejected = [b for b in batch if b.__class__ is not Entry]
        items = [b for b in batch if b.__class__ is Entry] if rejected else batch
        with log_scope(**_scope(items, source)):  # every line of this batch, down to the publishers
            await self._commit_scoped(items, rejected, source, report, turn)

    async def _commit_scoped(self, items: list[Entry], rejected: list[Rejection], source: str,
                             report: IngestReport, turn: asyncio.Future[None] | None = None) -> None:
        started = time.perf_counter()
        try:
            outcome = await self._write(items, rejected, source, turn)
        except _DATA_ERRORS as exc:
            if not items:
                raise
            if len(items) == 1:
                entry = items[0]
                why = exc.diag.message_primary or str(exc)
                rejected.append(Rejection(entry.line, entry.event.__struct_config__.tag, None, None,
                                          f"refused by the database: {why}", entry.text(), where=entry.where))
                await self._commit(rejected, source, report, turn)
                return
            log.warning("batch refused by the database; retrying it in halves", events=len(items), error=str(exc))
            self.rt.metrics.ingest_batch_splits.inc()
            if rejected:
                await self._commit(rejected, source, report, turn)
            half = len(items) // 2
            await self._commit(items[:half], source, report, turn)
            await self._commit(items[half:], source, report, turn)
            return
        staged_by_type, more_rejected, changes = outcome
        self.rt.metrics.pg_write_seconds.labels("ingest").observe(time.perf_counter() - started)
        for rejection in rejected + more_rejected:
            report.reject(rejection)
            self.rt.metrics.ingest_events.labels(rejection.event_type or "unknown", "rejected").inc()
        changed_types = set()
        for tag, staged in staged_by_type.items():
            report.count(tag, "accepted", staged.changed)
            report.count(tag, "duplicates", staged.duplicates)
            report.touch(tag, staged.models)
            self.rt.metrics.ingest_events.labels(tag, "accepted").inc(staged.changed)
            self.rt.metrics.ingest_events.labels(tag, "duplicates").inc(staged.duplicates)
            if staged.changed:
                changed_types.add(tag)
        if changed_types:
            await announce(self.rt, changes)  # best effort: logs and counts a Redis error
            await self._notify(changed_types)

    async def _write(self, items: list[Entry], rejected: list[Rejection], source: str,
                     turn: asyncio.Future[None] | None = None) -> tuple[dict[str, Staged], list[Rejection], list[Change]]:
        """One transaction for the batch, then its Redis publishers; returns what each event type's stage
        did, the events rejected inside the transaction (unknown references, stage refusals) and the
        changes to announce."""
        by_type: dict[str, Staged] = {}
        publishers: dict[Publisher, list[Any]] = {}
        async with self.rt.pool.connection() as conn:
            async with conn.transaction():
                ok, unresolved, registered = await self._references.check(conn, items) if items else ([], [], {})
                if self.fences and ok:
                    ok, stale = await self._fence(conn, ok)
                    unresolved = unresolved + stale
                await insert_dead_letters(conn, source, rejected + unresolved)
                groups = {cls.__struct_config__.tag: events for cls, events in group_by_type(e.event for e in ok).items()}
                for tag, stage in STAGES:
                    if tag in groups:
                        by_type[tag] = staged = await stage(self.rt, conn, groups[tag])
                        for publisher, values in staged.publish.items():
                            publishers.setdefault(publisher, []).extend(values)
                refused = _stage_rejections(ok, by_type)
                await insert_dead_letters(conn, source, refused)
            self._references.remember(registered)
            if turn is not None:
                await _wait_turn(turn)
            await self._publish(conn, publishers)
        return by_type, unresolved + refused, _changes(groups, by_type)

    async def _fence(self, conn: AsyncConnection, entries: list[Entry]) -> tuple[list[Entry], list[Rejection]]:
        """Refuse every event of a trader whose stored fencing token is above this process's (in the batch's
        transaction, under the token's row lock)."""
        stale = await stale_traders(conn, [e.event for e in entries], self.fences)
        if not stale:
            return entries, []
        ok, refused = [], []
        for e in entries:
            t = trader_named(e.event)
            if t in stale:
                refused.append(Rejection(e.line, e.event.__struct_config__.tag, "fencing_token", self.fences[t],
                                         f"{STALE_TOKEN} {self.fences[t]} for trader {t!r}: a newer lease "
                                         f"(token {stale[t]}) writes for it now", e.text(), where=e.where))
            else:
                ok.append(e)
        return ok, refused

    async def _publish(self, conn: AsyncConnection, publishers: dict[Publisher, list[Any]]) -> None:
        """Redis after commit, best effort: the truth is already safe in Postgres."""
        for publisher, values in publishers.items():
            try:
                await publisher(self.rt, conn, values)
            except Exception as exc:  # noqa: BLE001 - a cache write must never fail ingestion
                pipeline = publisher.__module__.split(".")[1]
                self.rt.metrics.redis_write_errors.labels(pipeline).inc()
                log.warning("redis publish failed after commit", pipeline=pipeline, publisher=publisher.__name__,
                            error=repr(exc))

    async def _notify(self, changed_types: set[str]) -> None:
        # this service's own listeners, then the process's (rt.commit_listeners: the scheduler of nof0 run)
        for callback in [*self.on_committed, *self.rt.commit_listeners]:
            try:
                await callback(set(changed_types))
            except Exception as exc:  # noqa: BLE001 - a listener must not fail ingestion
                log.warning("on_committed callback failed", callback=getattr(callback, "__name__", repr(callback)),
                            error=repr(exc))


# ---------------------------------------------------------------------- helpers
def _ticks_only(batch: list[Entry | Rejection]) -> bool:
    """A batch of price ticks (and perhaps rejected lines): the one kind two of which may be in flight."""
    return all(b.event.__class__ is PriceTick for b in batch if b.__class__ is Entry)


async def _wait_turn(before: asyncio.Future[None]) -> None:
    """Until the batch before has published; its failure is reported by the input loop, and this batch,
    already committed, still publishes (its facts are in Postgres)."""
    await asyncio.wait([before])


def _scope(items: list[Entry], source: str) -> dict[str, str | None]:
    """What a batch concerns, for its log lines (design 4.3): models, symbols, event types, producer.
    Read per event type's fields, so a 5000-tick batch costs a set of its symbols and no more."""
    groups = group_by_type(e.event for e in items)
    models: set[str] = set()
    symbols: set[str] = set()
    for kind, of_kind in groups.items():
        fields = kind.__struct_fields__
        for name in ("model_id", "trader_id"):
            if name in fields:
                models.update(map(attrgetter(name), of_kind))
                break
        if "symbol" in fields:
            symbols.update(map(attrgetter("symbol"), of_kind))
    return {"source": source, "source_event": joined(k.__struct_config__.tag for k in groups),
            "model": joined(models), "symbol": joined(symbols)}


def _changes(groups: dict[str, list[Any]], by_type: dict[str, Staged]) -> list[Change]:
    """One :class:`Change` per event type that changed the store, in stage order: the models and symbols
    its events name (ids only, so entries stay small) and, for ticks, each symbol's latest price."""
    out = []
    for tag, _stage in STAGES:
        staged = by_type.get(tag)
        if staged is None or not staged.changed:
            continue
        events = groups[tag]
        fields = type(events[0]).__struct_fields__  # one event type per tag
        models = set(staged.models)
        for attr in ("model_id", "trader_id"):
            if attr in fields:
                models.update(map(attrgetter(attr), events))
        models.discard(None)
        symbols: set[str] = set(map(attrgetter("symbol"), events)) if "symbol" in fields else set()
        symbols.discard(None)  # type: ignore[arg-type]
        if tag == "market_meta":
            for ev in events:
                symbols.update(u.name for u in ev.meta_and_asset_ctxs[0].universe)
        data = None
        if tag == "price_tick":
            data = {sym: ev.price for sym, ev in sorted(_latest_ticks(events).items())}
        out.append(Change(tag, tuple(sorted(models)), tuple(sorted(symbols)), data))
    return out


def _latest_ticks(ticks: list[Any]) -> dict[str, Any]:
    """Each symbol's tick with the greatest ts_ms (the later one of a tie)."""
    stamps = [t.ts_ms for t in ticks]
    if stamps == sorted(stamps):  # a feed's batch, in time order: its last tick of each symbol
        return dict(zip(map(attrgetter("symbol"), ticks), ticks))
    latest: dict[str, Any] = {}
    for ev in ticks:
        if ev.symbol not in latest or ev.ts_ms >= latest[ev.symbol].ts_ms:
            latest[ev.symbol] = ev
    return latest


def _stage_rejections(entries: list[Entry], by_type: dict[str, Staged]) -> list[Rejection]:
    """The stages' refusals as rejections named like the events they are about."""
    out: list[Rejection] = []
    if not any(staged.rejected for staged in by_type.values()):
        return out
    by_event = {id(e.event): e for e in entries}
    for tag, staged in by_type.items():
        for r in staged.rejected:
            entry = by_event[id(r.event)]
            out.append(Rejection(entry.line, r.event_type or tag, r.field, r.value, r.reason,
                                 r.raw if r.raw is not None else entry.text(), where=entry.where))
    return out


# Entry(...) without the named tuple's Python-level __new__ (a third of the cost of a line's entry)
_entry = tuple.__new__


def _decode(pair: tuple[int, str | bytes | OverlongLine], named: str | None = None) -> Entry | Rejection | None:
    line_no, raw = pair
    if raw.__class__ is bytes and len(raw) <= MAX_LINE_BYTES:  # the hot path: the line is decoded as is
        try:
            return _entry(Entry, (line_no, decode_line(raw, line_no), raw, named))
        except Rejected:
            pass  # decoded again below, from its text, for the rejection (blank, not UTF-8, invalid, ...)
    where = named or f"line {line_no}"
    if isinstance(raw, OverlongLine):
        return _overlong(line_no, where, raw.length, raw.limit, raw.head, raw.md5)
    if not isinstance(raw, (str, bytes)):
        return Rejection(line_no, None, None, None, f"not a line of text: {type(raw).__name__}", repr(raw),
                         where=where)
    if len(raw) > MAX_LINE_BYTES:  # an in-process caller's line, held whole already: the same bound
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        return _overlong(line_no, where, len(data), MAX_LINE_BYTES, data[:HEAD_BYTES], hashlib.md5(data).hexdigest())
    if isinstance(raw, str):
        if not raw.strip():
            return None
        text = raw.rstrip("\r\n")
    else:
        if not raw.strip():
            return None
        try:
            text = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejection(line_no, None, None, None, f"not UTF-8: {exc}", raw.decode("utf-8", "replace"),
                             where=where)
    try:
        return Entry(line_no, decode_line(text, line_no), text, named)
    except Rejected as exc:
        return dataclasses.replace(exc.rejection, where=where)


def _overlong(line_no: int, where: str, length: int, limit: int, head: bytes, md5: str) -> Rejection:
    text = head.decode("utf-8", "replace") + f"\n[... line truncated: {length} bytes in total]"
    return Rejection(line_no, None, None, None, f"line longer than {limit} bytes ({length} bytes); skipped",
                     text, where=where, raw_md5=md5)


async def _anumbered(lines: AsyncIterable[str | bytes], start: int) -> AsyncIterator[tuple[int, str | bytes]]:
    n = start
    async for line in lines:
        yield n, line
        n += 1


async def _achunks(pairs: AsyncIterator[tuple[int, str | bytes]], size: int, linger_s: float,
                   decode: Callable[[tuple[int, str | bytes]], Any]) -> AsyncIterator[list[Any]]:
    """Batches of a live stream: full ones at once, a partial one after ``linger_s`` of silence."""
    batch: list[Any] = []
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(pairs.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=linger_s if batch else None)
            if not done:
                yield batch
                batch = []
                continue
            try:
                pair = pending.result()
            except StopAsyncIteration:
                pending = None
                break
            pending = None
            if (item := decode(pair)) is not None:
                batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        if pending is not None:
            pending.cancel()
