"""Strict parsing of Hyperliquid's ``/info`` answers and WebSocket frames into the provider records.

A response whose shape is wrong as a whole (not JSON, not the documented structure) raises
:class:`MalformedResponse`; inside a well-formed response, one bad entry (a price that is no finite
positive number, an asset whose context is missing a required number) is reported to ``skip(reason,
detail)`` and left out, so the good entries around it still count. Nothing here raises anything else.

Numbers come as strings (``"111317.5"``); they must look like decimal numbers (no ``nan``, ``inf``,
underscores or blanks) and lie inside the platform's bounds (``nof0.kernel.events``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from typing import Any

import msgspec

from nof0.engine.market.provider import (
    AssetContext, AssetInfo, BookLevel, Candle, L2Book, MarketError, MarketSnapshot, TradePrint,
)
from nof0.kernel.events import AMOUNT_LIMIT, PRICE_LIMIT, AssetCtx, UniverseEntry

__all__ = [
    "MalformedResponse", "Skip", "Frame", "decode_frame", "parse_mids", "parse_meta_and_asset_ctxs",
    "parse_candles", "parse_candle", "parse_l2_book", "parse_trades", "price", "number",
]

Skip = Callable[[str, str], None]  # (reason, detail): a left-out entry, for the log and the metrics

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_DETAIL = 120  # characters of a bad value quoted in a detail


class MalformedResponse(MarketError):
    """The venue answered something that is not the documented shape."""


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _DETAIL else text[:_DETAIL] + "..."


def number(text: Any, *, limit: float = AMOUNT_LIMIT) -> float | None:
    """A venue number string as a float, or None when it is not one (or not finite, or beyond ``limit``)."""
    if not isinstance(text, str) or not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) and abs(value) <= limit else None


def price(text: Any) -> float | None:
    value = number(text, limit=PRICE_LIMIT)
    return value if value is not None and value > 0 else None


# --------------------------------------------------------------------------- WebSocket frames


class Frame(msgspec.Struct):
    channel: str
    data: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class _AllMids(msgspec.Struct):
    mids: dict[str, str]


_FRAME = msgspec.json.Decoder(Frame)
_ALL_MIDS_DATA = msgspec.json.Decoder(_AllMids)
_ALL_MIDS = msgspec.json.Decoder(dict[str, str])


def decode_frame(raw: str | bytes) -> Frame:
    """``{"channel": ..., "data": ...}``; raises MalformedResponse otherwise."""
    try:
        return _FRAME.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedResponse(f"not a Hyperliquid frame ({exc}): {_quote(raw)}") from None


def parse_mids(raw: bytes | str, wanted: Collection[str] | None, skip: Skip, *, frame_data: bool = False
               ) -> dict[str, float]:
    """``allMids``: ``{"BTC": "111317.5", ...}`` (REST) or ``{"mids": {...}}`` (a frame's data), kept to the
    ``wanted`` symbols (all when None); a wanted symbol whose price is not a positive number is skipped."""
    try:
        mids = _ALL_MIDS_DATA.decode(raw).mids if frame_data else _ALL_MIDS.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedResponse(f"allMids is not a map of coin to price string ({exc}): {_quote(raw)}") from None
    out: dict[str, float] = {}
    for symbol, text in mids.items():
        if wanted is not None and symbol not in wanted:
            continue
        px = price(text)
        if px is None:
            skip("bad_price", f"allMids {symbol}={_quote(text)} is not a positive number")
            continue
        out[symbol] = px
    return out


# --------------------------------------------------------------------------- metaAndAssetCtxs


class _Meta(msgspec.Struct):
    universe: list[msgspec.Raw]


_META = msgspec.json.Decoder(tuple[_Meta, list[msgspec.Raw]])
_UNIVERSE_ENTRY = msgspec.json.Decoder(UniverseEntry)
_ASSET_CTX = msgspec.json.Decoder(AssetCtx)
_CTX_NUMBERS = ("funding", "openInterest", "prevDayPx", "dayNtlVlm", "premium", "oraclePx", "markPx", "midPx",
                "dayBaseVlm")


def _context(ctx: AssetCtx) -> AssetContext | str:
    """The parsed context, or why it is unusable."""
    values: dict[str, float | None] = {}
    for name in _CTX_NUMBERS:
        text = getattr(ctx, name)
        if text is None:
            values[name] = None
            continue
        value = number(text)
        if value is None:
            return f"{name}={_quote(text)} is out of range"
        values[name] = value
    impact = None
    if ctx.impactPxs is not None:
        parsed = [number(p) for p in ctx.impactPxs]
        if any(p is None for p in parsed):
            return f"impactPxs={_quote(ctx.impactPxs)} is out of range"
        impact = tuple(parsed)
    mark = values["markPx"]
    if mark is None or not 0 < mark <= PRICE_LIMIT:
        return f"markPx={_quote(ctx.markPx)} is not a positive price"
    return AssetContext(
        funding=values["funding"], open_interest=values["openInterest"], mark_px=mark, mid_px=values["midPx"],
        oracle_px=values["oraclePx"], prev_day_px=values["prevDayPx"], day_ntl_vlm=values["dayNtlVlm"],
        premium=values["premium"], impact_pxs=impact, day_base_vlm=values["dayBaseVlm"],
    )


def parse_meta_and_asset_ctxs(raw: bytes | str, ts_ms: int, wanted: Collection[str] | None, skip: Skip
                              ) -> MarketSnapshot:
    """``[{"universe": [...], ...}, [ctx, ...]]`` (contexts in universe order) kept to the ``wanted``
    symbols; a wanted symbol the universe does not list, or whose entry or context is malformed, is
    skipped. Delisted assets are kept (marked)."""
    try:
        meta, ctxs = _META.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedResponse(f"metaAndAssetCtxs is not [meta, contexts] ({exc}): {_quote(raw)}") from None
    if len(meta.universe) != len(ctxs):
        raise MalformedResponse(
            f"metaAndAssetCtxs holds {len(meta.universe)} universe entries but {len(ctxs)} asset contexts")
    assets: dict[str, AssetInfo] = {}
    contexts: dict[str, AssetContext] = {}
    listed: set[str] = set()
    for i, (entry_raw, ctx_raw) in enumerate(zip(meta.universe, ctxs)):
        try:
            entry = _UNIVERSE_ENTRY.decode(entry_raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            skip("malformed_entry", f"universe[{i}] {_quote(bytes(entry_raw).decode(errors='replace'))}: {exc}")
            continue
        listed.add(entry.name)
        if wanted is not None and entry.name not in wanted:
            continue
        if entry.name in assets:
            skip("malformed_entry", f"universe[{i}] lists {entry.name} a second time")
            continue
        try:
            ctx = _context(_ASSET_CTX.decode(ctx_raw))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            ctx = str(exc)
        if isinstance(ctx, str):
            skip("malformed_entry", f"assetCtxs[{i}] ({entry.name}): {ctx}")
            continue
        assets[entry.name] = AssetInfo(
            name=entry.name, sz_decimals=entry.szDecimals, max_leverage=float(entry.maxLeverage),
            only_isolated=bool(entry.onlyIsolated), is_delisted=bool(entry.isDelisted),
            margin_table_id=entry.marginTableId,
        )
        contexts[entry.name] = ctx
    for symbol in sorted(set(wanted or ()) - listed):
        skip("unknown_symbol", f"{symbol} is not listed in the venue's universe")
    return MarketSnapshot(ts_ms, assets, contexts)


# --------------------------------------------------------------------------- candles, book, trades


class _CandleWire(msgspec.Struct):
    t: int
    T: int
    s: str
    i: str
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - the venue's field name
    v: str
    n: int = 0


_CANDLE = msgspec.json.Decoder(_CandleWire)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])


def _candle(wire: _CandleWire) -> Candle | str:
    o, h, lo, c = (price(x) for x in (wire.o, wire.h, wire.l, wire.c))
    v = number(wire.v)
    if None in (o, h, lo, c) or v is None or v < 0:
        return f"prices or volume are not numbers (o={wire.o!r} h={wire.h!r} l={wire.l!r} c={wire.c!r} v={wire.v!r})"
    if not lo <= min(o, c) <= max(o, c) <= h:
        return f"high {wire.h} / low {wire.l} do not bound open {wire.o} and close {wire.c}"
    if wire.T < wire.t:
        return f"close time {wire.T} is before open time {wire.t}"
    return Candle(t=wire.t, T=wire.T, symbol=wire.s, interval=wire.i, o=o, h=h, l=lo, c=c, v=v, n=wire.n)


def parse_candle(raw: bytes | str | msgspec.Raw, skip: Skip) -> Candle | None:
    try:
        parsed = _candle(_CANDLE.decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        parsed = str(exc)
    if isinstance(parsed, str):
        skip("malformed_entry", f"candle {_quote(bytes(raw) if isinstance(raw, msgspec.Raw) else raw)}: {parsed}")
        return None
    return parsed


def parse_candles(raw: bytes | str, skip: Skip) -> list[Candle]:
    """``candleSnapshot``: a list of candles, oldest first; malformed candles are skipped."""
    try:
        items = _RAW_LIST.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedResponse(f"candleSnapshot is not a list ({exc}): {_quote(raw)}") from None
    out = [c for c in (parse_candle(item, skip) for item in items) if c is not None]
    out.sort(key=lambda c: c.t)
    return out


class _LevelWire(msgspec.Struct):
    px: str
    sz: str
    n: int


class _BookWire(msgspec.Struct):
    coin: str
    time: int
    levels: tuple[list[_LevelWire], list[_LevelWire]]


_BOOK = msgspec.json.Decoder(_BookWire)


def parse_l2_book(raw: bytes | str, skip: Skip) -> L2Book:
    try:
        wire = _BOOK.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedResponse(f"l2Book is not {{coin, time, levels: [bids, asks]}} ({exc}): {_quote(raw)}") from None
    sides = []
    for side, levels in zip(("bids", "asks"), wire.levels):
        kept = []
        for j, lv in enumerate(levels):
            px, sz = price(lv.px), number(lv.sz)
            if px is None or sz is None or sz <= 0:
                skip("malformed_entry", f"l2Book {wire.coin} {side}[{j}] px={lv.px!r} sz={lv.sz!r}")
                continue
            kept.append(BookLevel(px, sz, lv.n))
        sides.append(tuple(kept))
    return L2Book(wire.coin, wire.time, sides[0], sides[1])


class _TradeWire(msgspec.Struct):
    coin: str
    side: str
    px: str
    sz: str
    time: int
    tid: int


def parse_trades(raw: bytes | str | msgspec.Raw, skip: Skip) -> list[TradePrint]:
    """A ``trades`` frame's data: a list of prints; malformed ones are skipped."""
    try:
        items = _RAW_LIST.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedResponse(f"trades data is not a list ({exc})") from None
    out = []
    for item in items:
        try:
            wire = msgspec.json.decode(item, type=_TradeWire)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            skip("malformed_entry", f"trade {_quote(bytes(item))}: {exc}")
            continue
        px, sz = price(wire.px), number(wire.sz)
        if px is None or sz is None or sz <= 0 or wire.side not in ("A", "B"):
            skip("malformed_entry", f"trade {wire.coin} px={wire.px!r} sz={wire.sz!r} side={wire.side!r}")
            continue
        out.append(TradePrint(wire.coin, wire.side, px, sz, wire.time, wire.tid))
    return out
