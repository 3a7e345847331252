"""Responses derived from a cached payload by a query parameter (``lastHourlyMarker``, ``limit``).

The full response is cached once (Redis + process); a parameterised answer is computed from its
decoded body and encoded once per (payload version, parameter), kept in a small LRU. Requests with
the same parameter against the same version get the same bytes and ETag.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable

from nof0.api.payload import Payload

__all__ = ["DerivedPayloads"]


class DerivedPayloads:
    def __init__(self, *, gzip_min: int, max_entries: int = 256) -> None:
        self.gzip_min = gzip_min
        self.max_entries = max_entries
        self._lru: OrderedDict[tuple[str, Hashable], Payload] = OrderedDict()

    def get(self, base: Payload, param: Hashable, derive: Callable[[Any], Any]) -> Payload:
        key = (base.etag, param)
        hit = self._lru.get(key)
        if hit is not None:
            self._lru.move_to_end(key)
            return hit
        payload = Payload.encode(derive(base.decoded()), gzip_min=self.gzip_min, now_ms=base.validated_ms)
        self._lru[key] = payload
        if len(self._lru) > self.max_entries:
            self._lru.popitem(last=False)
        return payload
