"""What the API holds per process: the source of each endpoint, the read path, derived variants."""

from __future__ import annotations

from pathlib import Path

from nof0.api.derived import DerivedPayloads
from nof0.api.listener import ChangeListener
from nof0.api.openapi import openapi_document
from nof0.api.payload import Payload
from nof0.api.read_path import ReadPath
from nof0.api.sources import ALL_VARIANT, Source
from nof0.api.sources.db import DbSource
from nof0.api.sources.file import FileSource
from nof0.api.spec import ALL_SPECS, SPECS
from nof0.api.stream import StreamHub
from nof0.config import ConfigError
from nof0.runtime import Runtime

__all__ = ["ApiState", "build_sources"]


def build_sources(rt: Runtime, read_path: ReadPath) -> dict[str, Source]:
    """``api.data_sources`` -> a source per endpoint (``db`` unless the endpoint says ``file``)."""
    api = rt.config.root.api
    db = DbSource(rt, read_path)
    file: FileSource | None = None
    if "file" in api.data_sources.values():
        if not api.file_dir:
            raise ConfigError(rt.config.path, "api.file_dir",
                              "an endpoint reads from file but no snapshot folder is set (or NOF0_FILE_DIR)")
        file_dir = rt.config.resolve(api.file_dir)
        if not file_dir.is_dir():
            raise ConfigError(rt.config.path, "api.file_dir", f"{api.file_dir!r} ({file_dir}) is not a folder")
        file = FileSource(file_dir, rt.clock, rt.config.ttl, gzip_min=api.gzip_min_bytes)
    sources: dict[str, Source] = {
        name: (file if file is not None and api.data_sources.get(name) == "file" else db) for name in SPECS}
    return {**sources, **{name: db for name in ALL_SPECS if name not in SPECS}}


class ApiState:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        gzip_min = rt.config.root.api.gzip_min_bytes
        self.read_path = ReadPath(rt)
        self.listener = ChangeListener(rt, self.read_path)  # runs for the app's lifespan
        self.stream = StreamHub(rt)  # /api/stream's clients, fed by the listener
        self.listener.subscribers.append(self.stream.publish)
        self.sources = build_sources(rt, self.read_path)
        self.derived = DerivedPayloads(gzip_min=gzip_min)
        self.openapi = Payload.encode(openapi_document(), gzip_min=gzip_min, now_ms=rt.clock.now_ms())

    async def payload(self, name: str, variant: str = ALL_VARIANT) -> Payload:
        return await self.sources[name].payload(ALL_SPECS[name], variant)

    def peek(self, name: str) -> Payload | None:
        """The whole endpoint's payload if it can be served without awaiting (``Source.peek``)."""
        return self.sources[name].peek(ALL_SPECS[name])

    def max_age(self, name: str) -> int:
        return int(self.rt.config.ttl.seconds(ALL_SPECS[name].ttl_class))
