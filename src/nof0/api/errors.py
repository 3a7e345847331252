"""The API's error answers: every one is a JSON body ``{"error": ..., "detail": ...}`` with a 4xx/503.

Raised anywhere below a route and turned into a response by ``app.py``; no input yields a 500.
"""

from __future__ import annotations

import msgspec

__all__ = ["ApiError", "NotFound", "BadParameter", "Unavailable"]


class ApiError(Exception):
    status = 500
    error = "internal"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict[str, str]:
        return {"error": self.error, "detail": self.detail}

    def encoded(self) -> bytes:
        return msgspec.json.encode(self.body())


class NotFound(ApiError):
    status = 404
    error = "not_found"


class BadParameter(ApiError):
    """A query parameter that does not parse or is out of range; names the parameter."""

    status = 400
    error = "bad_parameter"

    def __init__(self, name: str, value: str, expected: str) -> None:
        shown = value if len(value) <= 40 else value[:40] + "..."
        super().__init__(f"query parameter {name}={shown!r}: expected {expected}")
        self.parameter = name

    def body(self) -> dict[str, str]:
        return {**super().body(), "parameter": self.parameter}


class Unavailable(ApiError):
    """A data source cannot answer (Postgres down, snapshot file missing or unreadable)."""

    status = 503
    error = "unavailable"
