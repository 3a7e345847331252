"""Data sources of the API (design 5): ``file`` serves a nof1 snapshot folder, ``db`` Postgres + Redis.

``api.data_sources`` in ``etc/nof0.yaml`` picks one per endpoint (default ``db``), so endpoints cut
over one at a time; ``docs/migration.md`` gives the procedure.
"""

from __future__ import annotations

from typing import Protocol

from nof0.api.payload import Payload
from nof0.api.spec import EndpointSpec

__all__ = ["Source", "ALL_VARIANT"]

ALL_VARIANT = "all"  # the variant of an endpoint's full response; per-model analytics use the model id


class Source(Protocol):
    kind: str  # "file" or "db"

    async def payload(self, spec: EndpointSpec, variant: str = ALL_VARIANT) -> Payload:
        """The encoded body; raises ``NotFound`` (unknown model) or ``Unavailable``."""
        ...

    def peek(self, spec: EndpointSpec) -> Payload | None:
        """The whole endpoint's payload when it can be served now without awaiting anything, else None."""
        ...
