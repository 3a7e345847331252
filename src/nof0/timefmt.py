"""Time conversions of nof1's wire format: ms integers inside, seconds floats and UTC human strings out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["ms_to_s", "s_to_ms", "human_utc", "dt_to_s", "s_to_dt"]


def ms_to_s(ts_ms: int | None) -> float | None:
    """1761314029249 -> 1761314029.249 (the closest double, printed as nof1 prints it)."""
    return None if ts_ms is None else ts_ms / 1000


def s_to_ms(ts_s: float) -> int:
    return int(round(ts_s * 1000))


def human_utc(ts_ms: int | None) -> str | None:
    """nof1's ``*_human_time``: UTC ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if ts_ms is None:
        return None
    secs, ms = divmod(ts_ms, 1000)
    dt = datetime.fromtimestamp(secs, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S") + f".{ms * 1000:06d}"


def dt_to_s(dt: datetime | None) -> float | None:
    """A timestamptz as float seconds, exact to the microsecond nof1 publishes."""
    if dt is None:
        return None
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) + delta.microseconds / 1_000_000


def s_to_dt(ts_s: float) -> datetime:
    """Float seconds -> an aware UTC datetime, rounded to the microsecond (inverse of :func:`dt_to_s`)."""
    return _EPOCH + timedelta(microseconds=round(ts_s * 1_000_000))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
