"""Query parameters: parsed strictly, a bad value answers 400 naming the parameter.

Parameters an endpoint does not define are ignored (dashboards add cache-busters such as ``_=``).
Digits are ASCII only: ``int()`` would accept other scripts' digits and surrounding spaces.
"""

from __future__ import annotations

import re

from starlette.datastructures import QueryParams

from nof0.api.errors import BadParameter

__all__ = ["int_param", "IntParam", "POSITIONS_LIMIT", "LAST_HOURLY_MARKER"]

_DIGITS = re.compile(r"[0-9]{1,12}")


class IntParam:
    """An integer query parameter and its bounds: what the route enforces and /openapi.json declares."""

    def __init__(self, name: str, minimum: int, maximum: int) -> None:
        self.name, self.minimum, self.maximum = name, minimum, maximum

    def read(self, query: QueryParams) -> int | None:
        return int_param(query, self.name, minimum=self.minimum, maximum=self.maximum)


POSITIONS_LIMIT = IntParam("limit", 1, 1_000_000)  # /api/positions?limit=N: the first N models
LAST_HOURLY_MARKER = IntParam("lastHourlyMarker", 0, 1_000_000_000)  # /api/account-totals


def int_param(query: QueryParams, name: str, *, minimum: int, maximum: int) -> int | None:
    """The integer value of ``name``, None when absent; BadParameter when invalid or repeated."""
    values = query.getlist(name)
    if not values:
        return None
    expected = f"an integer from {minimum} to {maximum}"
    if len(values) > 1:
        raise BadParameter(name, "&".join(values), f"a single value ({expected})")
    raw = values[0]
    if not _DIGITS.fullmatch(raw):
        raise BadParameter(name, raw, expected)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise BadParameter(name, raw, expected)
    return value
