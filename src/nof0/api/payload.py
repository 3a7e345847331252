"""Encoded API payloads: the JSON body, its ETag and its gzip form, made once per data change.

A payload is encoded when its data changes (a rebuild from Postgres, a new value in Redis, a changed
snapshot file), never per request: requests serve the same bytes until the version changes.

In Redis a payload is one string (``nof0:api:{endpoint}:{variant}``, docs/redis-values.md): a fixed
42-byte header ``nof0api1 <32 hex etag>\\n`` followed by the body. A reader fetches only the header
(``GETRANGE 0 41``) to learn whether the bytes it already holds are current, so a warm request moves
42 bytes from Redis instead of the whole body.
"""

from __future__ import annotations

import gzip
import hashlib
from typing import Any

import msgspec

__all__ = ["Payload", "HEADER_LEN", "etag_of_header"]

_MAGIC = b"nof0api1 "
_ETAG_HEX = 32
HEADER_LEN = len(_MAGIC) + _ETAG_HEX + 1
_ENCODER = msgspec.json.Encoder()
_UNSET: Any = object()


def _etag(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=_ETAG_HEX // 2).hexdigest()


def etag_of_header(head: bytes | None) -> str | None:
    """The ETag in a Redis value's header, or None when the value is absent or not ours."""
    if not head or len(head) != HEADER_LEN or not head.startswith(_MAGIC) or head[-1:] != b"\n":
        return None
    etag = head[len(_MAGIC):-1]
    return etag.decode("ascii") if all(c in b"0123456789abcdef" for c in etag) else None


class Payload:
    """One response body, immutable once built. ``validated_ms`` is when its freshness was last known."""

    __slots__ = ("body", "etag", "validated_ms", "wire", "_gzip_min", "_gz", "_decoded", "_headers", "__weakref__")

    def __init__(self, body: bytes, *, gzip_min: int, validated_ms: int, etag: str | None = None) -> None:
        self.body = body
        self.etag = etag or _etag(body)
        self.validated_ms = validated_ms
        self._gzip_min = gzip_min
        self._gz: bytes | None = None
        self._decoded: Any = _UNSET
        self._headers: dict[tuple[bool, int, bool], list[tuple[bytes, bytes]]] = {}
        # whole HTTP responses of this version, prebuilt by the server's protocol (``api/wire.py``)
        self.wire: dict[Any, tuple[Any, bytes, int]] = {}  # (date headers, bytes, memfd or -1)

    @classmethod
    def encode(cls, obj: Any, *, gzip_min: int, now_ms: int) -> "Payload":
        return cls(_ENCODER.encode(obj), gzip_min=gzip_min, validated_ms=now_ms)

    @classmethod
    def from_redis(cls, raw: bytes | None, *, gzip_min: int, now_ms: int) -> "Payload | None":
        etag = etag_of_header(raw[:HEADER_LEN] if raw else None)
        if etag is None:
            return None
        return cls(bytes(raw[HEADER_LEN:]), gzip_min=gzip_min, validated_ms=now_ms, etag=etag)

    def to_redis(self) -> bytes:
        return _MAGIC + self.etag.encode("ascii") + b"\n" + self.body

    @property
    def compressible(self) -> bool:
        """Large enough to be worth gzip (``api.gzip_min_bytes``)."""
        return len(self.body) >= self._gzip_min

    def gzipped(self) -> bytes:
        """The gzip form, computed on first use and kept (deterministic: mtime 0)."""
        if self._gz is None:
            self._gz = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gz

    def headers(self, gz: bool, max_age: int, with_length: bool) -> list[tuple[bytes, bytes]]:
        """The response headers of one representation, built once: ETag, Cache-Control, Vary.

        The identity and gzip forms carry distinct strong ETags (``"<hash>"``, ``"<hash>-gz"``).
        ``with_length`` adds ``content-length`` (a 200); a 304 carries none.
        """
        key = (gz, max_age, with_length)
        built = self._headers.get(key)
        if built is None:
            built = [(b"content-type", b"application/json"),
                     (b"etag", f'"{self.etag}-gz"'.encode() if gz else f'"{self.etag}"'.encode()),
                     (b"cache-control", f"public, max-age={max_age}".encode())]
            if self.compressible:
                built.append((b"vary", b"Accept-Encoding"))
            if gz:
                built.append((b"content-encoding", b"gzip"))
            if with_length:
                built.append((b"content-length", str(len(self.gzipped() if gz else self.body)).encode()))
            self._headers[key] = built
        return built

    def decoded(self) -> Any:
        """The body as Python data (for variants derived from it), decoded once."""
        if self._decoded is _UNSET:
            self._decoded = msgspec.json.decode(self.body)
        return self._decoded
