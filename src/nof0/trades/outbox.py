"""The transactional outbox of the trades stream ``nof0:trades:stream`` (design 3.3, 4.1; issue 11).

Every trade change (``op`` add, update or delete) is written to ``trade_outbox`` by
:func:`write_entries` in the transaction that changed the trade, one binary COPY per batch; a replayed
trade changes nothing, so it gets no entry. After commit :func:`publish_pending` copies the committed
entries to the stream, in seq order, each with the explicit id ``<seq>-0``. Redis refuses an id at or
below the stream's last one, so an entry can never be added twice: a refusal counts as ``duplicate``
(``nof0_outbox_published_total{outcome}``). The stream's own last id says where to resume; the watermark
``trade_outbox_published`` records what was published (``nof0_outbox_pending`` counts above it) and
tells a first publication (which also sets or clears the idempotency guard ``nof0:ingest:trade:{id}``)
from a replay (which leaves the guards to the cache rebuild).

It runs after every commit that wrote entries, at the start of ``nof0 run`` and in its background loop
(``nof0.jobs.outbox_publisher``, which retries after a Redis outage), and from the cache rebuild. Whatever the
crash (between commit and publish, between XADD and the watermark), the next run publishes what is
missing. A stream that lost entries (FLUSHALL, DEL, an older Redis snapshot) is refilled from its last
id: an empty one gets the last ``ingest.trades_stream_maxlen`` entries again, in order, under their
ids, so consumers reading from an id they saw (XREAD) neither miss nor repeat an entry. A stream
whose last id is beyond the outbox (ids written before migration 011, another database's) is replaced.

Concurrent writers: two transactions may draw seqs 5 and 6 and commit 6 first; publishing 6 would make
5 unpublishable (a gap). Writers therefore hold a transaction-scoped advisory lock in *shared* mode from
before their first seq until their commit (taken just before the COPY); a publisher takes it *exclusive* with
``pg_try_advisory_xact_lock`` for an instant and reads the sequence's last value ``L``: at that moment no
transaction is between drawing a seq and ending, so every seq <= L is final (committed, or rolled back
for good) and the publisher publishes only up to L. Writers never wait for each other (shared locks)
and never wait on a publisher (it only tries); a publisher that finds a writer in flight returns at once,
since that writer publishes after its own commit (and the background loop covers a writer that died).
The entries of one batch keep their order (seq in list order); across batches, seq order is commit
order of whatever a publisher can see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.obs.logging import get_logger
from nof0.runtime import Runtime
from nof0.trades import outbox_repository as repo

__all__ = ["write_entries", "stream_fields", "publish_outbox", "publish_pending", "Published",
           "stream_id", "RETRY_EVERY_S"]

log = get_logger("nof0.trades.outbox")

RETRY_EVERY_S = 1.0  # the background loop's pause between publications (and retries after an outage)
_BATCH = 500  # entries per script call (one round trip)


def stream_id(seq: int) -> str:
    return f"{seq}-0"


def _seq_of(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def stream_fields(op: str, row: dict[str, Any]) -> list[str]:
    """The stream entry of a trade change: field, value, ... (numbers as decimal strings, '' when unknown)."""
    def text(v: Any) -> str:
        return "" if v is None else repr(v) if isinstance(v, float) else str(v)

    exit_ms = row.get("exit_ts_ms")
    return ["op", op, "id", row["id"], "model_id", row["model_id"], "symbol", row["symbol"], "side", row["side"],
            "realized_net_pnl", text(row.get("realized_net_pnl")),
            "exit_time", text(exit_ms / 1000 if exit_ms is not None else None)]


async def write_entries(conn: AsyncConnection, changes: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """In the transaction that made them: one outbox entry per trade change, in order."""
    await repo.insert_entries(conn, [(row["id"], op, stream_fields(op, row)) for op, row in changes])


async def publish_outbox(rt: Runtime, conn: AsyncConnection, _changes: list[Any]) -> None:
    """The after-commit publisher of the trade stages (``Staged.then``): publishes every pending entry."""
    await publish_pending(rt, conn)


@dataclass
class Published:
    added: int = 0
    duplicates: int = 0
    busy: bool = False  # a writer was in flight: it publishes after its commit
    pruned: int = 0  # published entries deleted from the outbox (jobs.outbox_publisher)


# KEYS: stream, then one guard per entry; ARGV: MAXLEN, guard TTL (ms), then per entry: id, guard op
# (set, del or ''), its field/value strings as the JSON array the outbox stores (decoded here: one
# argument per entry instead of a dozen, since redis-py packs every argument in Python). Entries are added
# in order and the script stops at the first error other than a refused id, so a failure never leaves a
# gap behind it.
_ADD = """
local i, added, dup = 3, 0, 0
for k = 2, #KEYS do
  local id, guard, fields = ARGV[i], ARGV[i + 1], cjson.decode(ARGV[i + 2])
  i = i + 3
  local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, unpack(fields))
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'equal or smaller', 1, true) then return r end
    dup = dup + 1
  else
    added = added + 1
    if guard == 'set' then
      redis.call('SET', KEYS[k], 'seen', 'PX', ARGV[2])
    elseif guard == 'del' then
      redis.call('DEL', KEYS[k])
    end
  end
end
return {added, dup}
"""


async def _add_to_stream(rt: Runtime, rows: list[dict[str, Any]], watermark: int) -> tuple[int, int]:
    """XADD the rows under their ids; first publications (seq above the watermark) also set the guard of
    an ``add`` and clear that of a ``delete``. Returns (added, duplicates)."""
    keys = [rt.keys.trades_stream().name]
    args: list[Any] = [rt.config.root.ingest.trades_stream_maxlen, 0]
    for row in rows:
        guard = rt.keys.ingest_trade(row["trade_id"])
        args[1] = guard.ttl_ms
        keys.append(guard.name)
        op = {"add": "set", "delete": "del"}.get(row["op"], "") if row["seq"] > watermark else ""
        args += [stream_id(row["seq"]), op, row["fields"]]
    added, dup = await rt.redis.eval(_ADD, len(keys), *keys, *args)
    return int(added), int(dup)


async def _stream_top(rt: Runtime) -> int:
    """The seq of the stream's last entry (0: empty or absent)."""
    last = await rt.redis.xrevrange(rt.keys.trades_stream().name, "+", "-", count=1)
    return _seq_of(last[0][0]) if last else 0


async def publish_pending(rt: Runtime, conn: AsyncConnection) -> Published:
    """Publish every final entry the stream is missing (see the module docstring); raises on a Redis error."""
    async with conn.transaction():
        horizon = await repo.try_lock_horizon(conn)
    if horizon is None:
        return Published(busy=True)
    done = Published()
    top = await _stream_top(rt)
    async with conn.transaction():
        watermark = await repo.get_published(conn)
        if top > horizon and top > await repo.last_seq(conn):
            log.warning("trades stream ahead of its outbox (ids not from it): replaced", stream_top=top)
            await rt.redis.delete(rt.keys.trades_stream().name)
            top = 0
        start = top
        maxlen = rt.config.root.ingest.trades_stream_maxlen
        if horizon - top > maxlen:  # refill after a loss (or a long outage): the stream keeps the last maxlen
            nth = await repo.nth_latest_seq(conn, top, horizon, maxlen)
            start = nth - 1 if nth is not None else top
        if top > watermark:  # published before a crash that came before the watermark was raised
            await repo.mark_published(conn, min(top, horizon))
    while True:
        async with conn.transaction():
            rows = await repo.list_entries(conn, start, horizon, _BATCH)
        if not rows:
            break
        added, dup = await _add_to_stream(rt, rows, watermark)
        done.added += added
        done.duplicates += dup
        rt.metrics.outbox_published.labels(repo.STREAM, "added").inc(added)
        rt.metrics.outbox_published.labels(repo.STREAM, "duplicate").inc(dup)
        start = rows[-1]["seq"]
        async with conn.transaction():
            await repo.mark_published(conn, start)
            if len(rows) < _BATCH:  # the last batch: no query for an empty one
                break
    async with conn.transaction():
        rt.metrics.outbox_pending.labels(repo.STREAM).set(await repo.count_pending(conn))
    return done
