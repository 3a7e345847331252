"""The ``file`` data source (design 5, dual-write phase): a nof1 snapshot folder served as it is.

``api.file_dir`` holds one JSON file per endpoint, named as nof1's paths (``trades.json``,
``crypto-prices.json``, ...). Analytics come from ``analytics.json`` or, when absent, from the
per-model files ``analytics-{model_id}.json`` (as in ``tests/fixtures/nof1-2025-10-26``).

A file is read once per change of its size or modification time (one ``stat`` per request) and
encoded once per change or per TTL class of the endpoint, never per request. The body is the file's
JSON with ``serverTime`` set to the time it was encoded, for the endpoints whose nof1 body carries
one: as with the db source, ``serverTime`` is at most the TTL class old.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from nof0.api.errors import NotFound, Unavailable
from nof0.api.payload import Payload
from nof0.api.sources import ALL_VARIANT
from nof0.api.spec import EndpointSpec
from nof0.kernel.clock import Clock
from nof0.config import TTLClasses

__all__ = ["FileSource"]

_Signature = tuple[tuple[str, int, int], ...]


class FileSource:
    kind = "file"

    def __init__(self, directory: str | Path, clock: Clock, ttl: TTLClasses, *, gzip_min: int) -> None:
        self.directory = Path(directory)
        self.clock = clock
        self.ttl = ttl
        self.gzip_min = gzip_min
        self._loaded: dict[tuple[str, str], tuple[_Signature, dict[str, Any], Payload]] = {}

    async def payload(self, spec: EndpointSpec, variant: str = ALL_VARIANT) -> Payload:
        files = self._files(spec, variant)
        signature = _signature(files)
        now = self.clock.now_ms()
        loaded = self._loaded.get((spec.name, variant))
        if loaded is not None and loaded[0] == signature:
            _, body, payload = loaded
            if not spec.server_time or now - payload.validated_ms < self.ttl.millis(spec.ttl_class):
                return payload
        else:
            body = await asyncio.to_thread(_read_body, spec, variant, files)
        if spec.server_time:
            body["serverTime"] = now
        payload = Payload.encode(body, gzip_min=self.gzip_min, now_ms=now)
        if payload.compressible:
            await asyncio.to_thread(payload.gzipped)
        self._loaded[(spec.name, variant)] = (signature, body, payload)
        return payload

    def peek(self, spec: EndpointSpec) -> Payload | None:
        return None  # every request checks the snapshot files' signature (``payload``)

    def _files(self, spec: EndpointSpec, variant: str) -> list[Path]:
        if spec.name != "analytics":
            return [self._require(self.directory / spec.file_name)]
        combined = self.directory / spec.file_name
        if variant != ALL_VARIANT:
            if "/" in variant or variant.startswith("."):
                raise NotFound(f"unknown model {variant!r}")
            own = self.directory / f"analytics-{variant}.json"
            if own.is_file():
                return [own]
            if combined.is_file():
                return [combined]
            raise NotFound(f"unknown model {variant!r}")
        if combined.is_file():
            return [combined]
        per_model = sorted(self.directory.glob("analytics-*.json"))
        if not per_model:
            raise Unavailable(f"no analytics.json or analytics-*.json in {self.directory}")
        return per_model

    def _require(self, path: Path) -> Path:
        if not path.is_file():
            raise Unavailable(f"{path} not found (this endpoint's data source is file)")
        return path


def _signature(files: list[Path]) -> _Signature:
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError as exc:
            raise Unavailable(f"cannot read {f}: {exc.strerror}") from None
        out.append((f.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(path.read_bytes())
    except OSError as exc:
        raise Unavailable(f"cannot read {path}: {exc.strerror}") from None
    except msgspec.DecodeError as exc:
        raise Unavailable(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Unavailable(f"{path}: expected a JSON object at the top level")
    return data


def _analytics_items(data: dict[str, Any], path: Path) -> list[Any]:
    items = data.get("analytics")
    if not isinstance(items, list):
        raise Unavailable(f"{path}: expected an \"analytics\" list")
    return items


def _read_body(spec: EndpointSpec, variant: str, files: list[Path]) -> dict[str, Any]:
    if spec.name != "analytics":
        return _read_object(files[0])
    if variant == ALL_VARIANT:
        if len(files) == 1 and files[0].name == spec.file_name:
            return _read_object(files[0])
        items: list[Any] = []
        for f in files:
            items.extend(_analytics_items(_read_object(f), f))
        return {"analytics": items}
    data = _read_object(files[0])
    if files[0].name == spec.file_name:  # the combined file: pick the model's element
        mine = [a for a in _analytics_items(data, files[0])
                if isinstance(a, dict) and variant in (a.get("model_id"), a.get("id"))]
        if not mine:
            raise NotFound(f"unknown model {variant!r}")
        return {"analytics": mine}
    return data
