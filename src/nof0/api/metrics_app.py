"""The listener of a process that serves no API (``nof0 run --role engine``): ``GET /metrics`` and
``GET /healthz`` only, on ``api.metrics_port``, so Prometheus scrapes the engine's feeds, traders, sim
exchange, jobs and ingest like it scrapes an API process's port (docs/metrics.md)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nof0.obs.exposition import CONTENT_TYPE_LATEST, render_metrics
from nof0.runtime import Runtime

__all__ = ["create_metrics_app"]


def create_metrics_app(rt: Runtime) -> Starlette:
    async def metrics(request: Request) -> Response:
        body = await render_metrics(rt)
        return Response(body, headers={"content-type": CONTENT_TYPE_LATEST, "cache-control": "no-store"})

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json", headers={"cache-control": "no-store"})

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"]), Route("/healthz", healthz, methods=["GET"])])
