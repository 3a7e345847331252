"""HTTP answers of the API: encoded payloads with ETag / 304 / gzip / Cache-Control, and JSON errors.

``payload_parts`` is the one place a payload becomes (status, headers, body); the Starlette routes
and the fast path (``fast.py``) both use it. Either representation's ETag in ``If-None-Match``
answers 304: both name the same version of the data.
"""

from __future__ import annotations

import msgspec
import psycopg
from psycopg_pool import PoolTimeout
from starlette.requests import Request
from starlette.responses import Response

from nof0.api.errors import ApiError, Unavailable
from nof0.api.payload import Payload
from nof0.obs.logging import get_logger

__all__ = ["payload_parts", "payload_response", "error_parts", "error_response", "json_response", "as_api_error",
           "accepts_gzip", "etag_matches", "EncodedResponse"]

log = get_logger("nof0.api")

_JSON = "application/json"
Headers = list[tuple[bytes, bytes]]


def payload_parts(payload: Payload, max_age: int, accept_encoding: str | None, if_none_match: str | None,
                  head: bool = False) -> tuple[int, Headers, bytes]:
    gz = payload.compressible and accepts_gzip(accept_encoding)
    if if_none_match is not None and etag_matches(if_none_match, payload.etag):
        return 304, payload.headers(gz, max_age, False), b""
    body = b"" if head else payload.gzipped() if gz else payload.body
    return 200, payload.headers(gz, max_age, True), body


class EncodedResponse(Response):
    """A response whose headers and body are already bytes (no per-request header building)."""

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status_code = status
        self.raw_headers = headers
        self.body = body
        self.background = None


def payload_response(request: Request, payload: Payload, max_age: int) -> Response:
    h = request.headers
    return EncodedResponse(*payload_parts(payload, max_age, h.get("accept-encoding"), h.get("if-none-match"),
                                          request.method == "HEAD"))


def json_response(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(obj), status_code=status, headers=headers, media_type=_JSON)


def error_parts(err: ApiError) -> tuple[int, Headers, bytes]:
    body = err.encoded()
    return err.status, [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                        (b"content-length", str(len(body)).encode())], body


def error_response(err: ApiError) -> Response:
    return EncodedResponse(*error_parts(err))


def as_api_error(exc: BaseException) -> ApiError | None:
    """The answer an exception deserves: its own (ApiError), 503 for Postgres unreachable, else None."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
        log.warning("postgres unavailable", error=str(exc))
        return Unavailable("the database is unreachable; retry shortly")
    return None


def accepts_gzip(header: str | None) -> bool:
    """``Accept-Encoding`` allows gzip (``gzip``, ``x-gzip`` or ``*``, and not with ``q=0``)."""
    if not header:
        return False
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().replace(" ", "").lower()
            return not (q.startswith("q=0") and q.strip("q=0.") == "")
    return False


def etag_matches(header: str, etag: str) -> bool:
    for token in header.split(","):
        t = token.strip()
        if t == "*":
            return True
        if t.startswith("W/"):
            t = t[2:]
        if t == f'"{etag}"' or t == f'"{etag}-gz"':
            return True
    return False
