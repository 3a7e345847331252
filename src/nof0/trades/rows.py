"""Deterministic ids and the closed-trade row shared by the fill book and position closes.

Ids are derived from the facts (uuid5), so a replay produces the same ids and upserts are no-ops
(design 4.2). They look like nof1's (``gpt-5_<uuid>``) and stay within the 64 key-safe characters
of ``nof0.cache.keys`` because trade ids end up in ``nof0:ingest:trade:{trade_id}``.
"""

from __future__ import annotations

import uuid
from hashlib import sha1
from typing import Any

from nof0.timefmt import ms_to_s
from nof0.trades.payloads import signed_quantity

__all__ = ["NAMESPACE", "derived_id", "nof1_trade_id", "closed_trade_row", "TRADE_COLUMNS", "POSITION_COLUMNS"]

NAMESPACE = uuid.UUID("5b0a4f8e-2f4c-5d53-9a3e-6e6f66302d30")  # fixed forever: ids depend on it
_PREFIX = 64 - 37  # room for "_" + a 36-character uuid


_NAMESPACE_BYTES = NAMESPACE.bytes


def derived_id(model_id: str, *parts: object) -> str:
    """``{model_id}_{uuid5(model_id|parts...)}``; a long model id is shortened in the prefix only.

    uuid5 spelled out (RFC 4122 4.3: SHA-1 of namespace and name, version 5, variant 10): the same
    text as ``str(uuid.uuid5(...))`` without building a ``UUID`` (a fill book derives one per fill)."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + "|".join([model_id, *map(str, parts)]).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{model_id[:_PREFIX]}_{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def nof1_trade_id(model_id: str, symbol: str, entry_ts_ms: int, exit_ts_ms: int) -> str:
    """nof1's human ``trade_id``: ``"{entry_time}_{symbol}_{exit_time}_{model_id}"`` (times in seconds)."""
    return f"{ms_to_s(entry_ts_ms)!r}_{symbol}_{ms_to_s(exit_ts_ms)!r}_{model_id}"


# Every column a pipeline writes, in a fixed order (the unnest statements use the same order).
TRADE_COLUMNS: tuple[str, ...] = (
    "id", "trade_id", "model_id", "symbol", "side", "trade_type", "quantity", "leverage", "confidence",
    "entry_price", "entry_ts_ms", "exit_price", "exit_ts_ms", "realized_gross_pnl", "realized_net_pnl",
    "total_commission_dollars", "entry_oid", "exit_oid", "entry_sz", "exit_sz", "entry_tid", "exit_tid",
    "entry_crossed", "exit_crossed", "entry_liquidation", "exit_liquidation", "entry_commission_dollars",
    "exit_commission_dollars", "entry_closed_pnl", "exit_closed_pnl", "exit_plan", "origin",
)
POSITION_COLUMNS: tuple[str, ...] = (
    "id", "model_id", "symbol", "side", "entry_price", "quantity", "leverage", "confidence", "entry_ts_ms",
    "commission", "status", "exit_ts_ms", "exit_price", "metadata", "entry_oid", "exit_plan", "origin",
    "updated_ts_ms", "version_md5",
)


def closed_trade_row(
    *,
    id: str,
    model_id: str,
    symbol: str,
    side: str,
    size: float,
    entry_price: float,
    entry_ts_ms: int,
    exit_price: float,
    exit_ts_ms: int,
    entry_fee: float,
    exit_fee: float,
    origin: str,
    leverage: float | None = None,
    confidence: float | None = None,
    exit_plan: dict[str, Any] | None = None,
    entry_oid: int | None = None,
    exit_oid: int | None = None,
    entry_tid: int | None = None,
    exit_tid: int | None = None,
    entry_crossed: bool | None = None,
    exit_crossed: bool | None = None,
    entry_liquidation: dict[str, Any] | None = None,
    exit_liquidation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A round trip of ``size`` in nof1's trade shape.

    Gross PnL is the price move times the signed size; each leg's ``closed_pnl`` is what the venue
    books for it (the entry leg pays its fee, the exit leg books the move minus its fee), and the net
    is their sum, as in nof1's captures (``realized_net_pnl = entry_closed_pnl + exit_closed_pnl``).
    """
    gross = (exit_price - entry_price) * signed_quantity(side, size)
    exit_closed = gross - exit_fee
    return {
        "id": id,
        "trade_id": nof1_trade_id(model_id, symbol, entry_ts_ms, exit_ts_ms),
        "model_id": model_id,
        "symbol": symbol,
        "side": side,
        "trade_type": side,
        "quantity": signed_quantity(side, size),
        "leverage": leverage,
        "confidence": confidence,
        "entry_price": entry_price,
        "entry_ts_ms": entry_ts_ms,
        "exit_price": exit_price,
        "exit_ts_ms": exit_ts_ms,
        "realized_gross_pnl": gross,
        "realized_net_pnl": (0.0 - entry_fee) + exit_closed,
        "total_commission_dollars": entry_fee + exit_fee,
        "entry_oid": entry_oid,
        "exit_oid": exit_oid,
        "entry_sz": size,
        "exit_sz": size,
        "entry_tid": entry_tid,
        "exit_tid": exit_tid,
        "entry_crossed": entry_crossed,
        "exit_crossed": exit_crossed,
        "entry_liquidation": entry_liquidation,
        "exit_liquidation": exit_liquidation,
        "entry_commission_dollars": entry_fee,
        "exit_commission_dollars": exit_fee,
        "entry_closed_pnl": 0.0 - entry_fee,  # not -entry_fee: a zero fee must not print as -0.0
        "exit_closed_pnl": exit_closed,
        "exit_plan": exit_plan if exit_plan is not None else {},
        "origin": origin,
    }
