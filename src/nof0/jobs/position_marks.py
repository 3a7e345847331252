"""The positions hashes follow the prices (design 3.2 ``nof0:positions:{model_id}``): a background worker of
``nof0 run`` (roles ``all`` and ``engine``) that every ``jobs.positions_remark_every`` reads the marks
Postgres implies (open positions joined with ``price_latest``, one query) and re-marks the hashes of the
models whose marks moved since it last wrote them (``trades.cache.remark_positions``: their locks in one
round trip, their rows in one query, the hashes in one MULTI).

Not per tick: a feed commits many batches a second and the hash TTL (``ttl.positions``, 30 s) is far
longer than the cadence, so one pass per interval keeps the marks at most an interval behind the prices
without adding a round trip per tick and model to the price pipeline. A model without a price move is not
rewritten (its hash expires with its TTL like any other value; readers fall back to Postgres). On stop a
last pass runs, so the hashes left behind carry the last prices.
"""

from __future__ import annotations

from nof0.jobs.periodic import Periodic
from nof0.runtime import Runtime
from nof0.trades import repository as trades_repo
from nof0.trades.cache import remark_positions

__all__ = ["PositionMarks"]


class PositionMarks(Periodic):
    name = "position_marks"
    final_pass = True

    def __init__(self, rt: Runtime, *, every_s: float | None = None) -> None:
        super().__init__(every_s if every_s is not None else rt.config.root.jobs.positions_remark_every)
        self.rt = rt
        self._written: dict[str, tuple] = {}  # model -> the (symbol, mark) pairs its hash was last written with

    async def run_once(self) -> list[str]:
        """One pass; returns the models whose hashes were re-marked."""
        async with self.rt.pool.connection() as conn:
            async with conn.transaction():
                rows = await trades_repo.list_open_marks(conn)
            now: dict[str, list[tuple]] = {}
            for r in rows:
                now.setdefault(r["model_id"], []).append((r["symbol"], r["mark"]))
            moved = [m for m, marks in now.items() if self._written.get(m) != tuple(marks)]
            written = await remark_positions(self.rt, conn, moved) if moved else {}
        # a model that closed everything leaves the memory (the close's own rebuild removed its hash)
        self._written = {m: v for m, v in {**self._written, **written}.items() if m in now}
        return sorted(written)

    def on_failure(self, exc: Exception) -> None:
        self._written.clear()  # what Redis holds is unknown now: rewrite every hash on the next pass
