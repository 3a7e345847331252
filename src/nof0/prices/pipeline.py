"""The price pipeline of design 2.4 "Prices": a batch of ticks is stored in one COPY (step 2), the
latest price moves once per batch (step 3), and Redis learns each symbol's latest price and the
``crypto_prices`` map once per batch, after commit (step 5). Step 4 (``market_asset_ctx``) belongs to
``market_meta`` events; the view refresh (step 6) to the scheduler (``IngestService.on_committed``).
"""

from __future__ import annotations

from psycopg import AsyncConnection

from nof0.kernel.events import PriceTick
from nof0.kernel.stage import Staged
from nof0.prices import repository as repo
from nof0.prices.cache import publish_read_prices
from nof0.runtime import Runtime

__all__ = ["stage_ticks"]


async def stage_ticks(rt: Runtime, conn: AsyncConnection, ticks: list[PriceTick]) -> Staged:
    stored = await repo.insert_ticks(conn, ticks)
    symbols = sorted({t.symbol for t in ticks})
    # what Redis gets after commit, read now: the rows of these symbols are locked by the move (an
    # ON CONFLICT DO UPDATE locks the row even when its WHERE keeps the stored price), so they read what
    # this transaction commits; the other symbols read what is committed, as a read after the commit would
    latest = await repo.list_latest(conn)
    return Staged(changed=stored, duplicates=len(ticks) - stored).then(publish_read_prices, (latest, symbols))
