"""HTTP answers of the API: encoded payloads with ETag / 304 / gzip / Cache-Control, and JSON errors.

The two representations of a payload carry distinct strong ETags (``"<hash>"`` and ``"<hash>-gz"``);
``If-None-Match`` with either answers 304, since both name the same version of the data.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from nof0.api.errors import ApiError
from nof0.api.payload import Payload

__all__ = ["payload_response", "error_response", "json_response"]

_JSON = "application/json"


def payload_response(request: Request, payload: Payload, max_age: int) -> Response:
    gz = payload.compressible and accepts_gzip(request.headers.get("accept-encoding"))
    etag = f'"{payload.etag}-gz"' if gz else f'"{payload.etag}"'
    headers = {"etag": etag, "cache-control": f"public, max-age={max_age}"}
    if payload.compressible:
        headers["vary"] = "Accept-Encoding"
    inm = request.headers.get("if-none-match")
    if inm is not None and etag_matches(inm, payload.etag):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["content-encoding"] = "gzip"
        return Response(payload.gzipped(), headers=headers, media_type=_JSON)
    return Response(payload.body, headers=headers, media_type=_JSON)


def json_response(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(obj), status_code=status, headers=headers, media_type=_JSON)


def error_response(err: ApiError) -> Response:
    return json_response(err.body(), err.status, {"cache-control": "no-store"})


def accepts_gzip(header: str | None) -> bool:
    """``Accept-Encoding`` allows gzip (``gzip``, ``*``, ``x-gzip``; not with ``q=0``)."""
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
