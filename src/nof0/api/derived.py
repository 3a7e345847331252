"""Responses derived from a cached payload by a query parameter (``lastHourlyMarker``, ``limit``).

The full response is cached once (Redis + process); a parameterised answer is computed from its
decoded body and encoded once per (payload version, parameter), kept in a small LRU. Requests with
the same parameter against the same version get the same bytes and ETag. The LRU is bounded by
bytes, not entries: one variant of a large series can be megabytes, and parameters come from clients.
When a new version of a base payload is derived from, the variants of its older versions are dropped
at once (no request asks for them again): under a steady ingest they would otherwise fill the whole
bound with dead bytes (the API soak, bench/api_soak_bench.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable

from nof0.api.payload import Payload

__all__ = ["DerivedPayloads"]


class DerivedPayloads:
    def __init__(self, *, gzip_min: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.gzip_min = gzip_min
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self._lru: OrderedDict[tuple[str, Hashable], Payload] = OrderedDict()
        self._version: dict[Hashable, str] = {}  # kind of variant (the parameter's first item) -> base etag

    def get(self, base: Payload, param: Hashable, derive: Callable[[Any], Any]) -> Payload:
        key = (base.etag, param)
        hit = self._lru.get(key)
        if hit is not None:
            self._lru.move_to_end(key)
            return hit
        kind = param[0] if isinstance(param, tuple) and param else param
        if self._version.get(kind, base.etag) != base.etag:
            self._drop_kind(kind)
        self._version[kind] = base.etag
        payload = Payload.encode(derive(base.decoded()), gzip_min=self.gzip_min, now_ms=base.validated_ms)
        self._lru[key] = payload
        self.held_bytes += len(payload.body)
        while self.held_bytes > self.max_bytes and len(self._lru) > 1:
            _, evicted = self._lru.popitem(last=False)
            self.held_bytes -= len(evicted.body)
        return payload

    def _drop_kind(self, kind: Hashable) -> None:
        for key in [k for k in self._lru if (k[1][0] if isinstance(k[1], tuple) and k[1] else k[1]) == kind]:
            self.held_bytes -= len(self._lru.pop(key).body)
