"""nof1 shape of a conversation message (``/api/conversations``)."""

from __future__ import annotations

from typing import Any, Mapping

from nof0.timefmt import ms_to_s

__all__ = ["message_json"]


def message_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"role": row["role"], "content": row["content"], "timestamp": ms_to_s(row.get("ts_ms"))}
