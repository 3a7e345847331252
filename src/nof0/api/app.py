"""The Starlette application factory. Nothing happens at import time: ``create_app(rt)`` builds it
from a runtime (composition root), so ``nof0 serve``, ``nof0 run`` and the tests share one path.

Errors are JSON: ``ApiError`` subclasses (400, 404, 503), unknown paths (404) and methods (405);
Postgres unreachable answers 503. CORS comes from ``api.cors_origins`` (``cors.py``); whole-endpoint
GETs take the fast path (``fast.py``) before routing. For its lifespan the app listens to the changes
writers announce (``listener.py``) and drops the cached responses they make stale.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import psycopg
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nof0.api import routes
from nof0.api.cors import CorsMiddleware
from nof0.api.dashboard import dashboard_routes
from nof0.api.errors import ApiError
from nof0.api.fast import FastPath
from nof0.api.responses import as_api_error, error_response, json_response
from nof0.api.spec import ALL_SPECS
from nof0.api.state import ApiState
from nof0.api.stream import StreamEndpoint
from nof0.runtime import Runtime

__all__ = ["create_app"]

async def _api_error(request: Request, exc: Exception) -> Response:
    err = as_api_error(exc)
    assert err is not None, exc  # registered only for the exceptions as_api_error maps
    return error_response(err)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return json_response({"error": error, "detail": exc.detail}, exc.status_code, exc.headers)


@asynccontextmanager
async def _lifespan(app: "ArenaApp") -> AsyncIterator[None]:
    async with app.state.api.listener.running():
        yield


class ArenaApp(Starlette):
    """Starlette, fronted by CORS and the fast path: a whole-endpoint GET never reaches the router."""

    def __init__(self, state: ApiState, **kwargs: Any) -> None:
        super().__init__(lifespan=_lifespan, **kwargs)
        self.state.api = state
        self.hot_state = state  # the state the fast path reads: api/wire.py answers from the same
        self._front = CorsMiddleware(FastPath(super().__call__, state), state.rt.config.root.api.cors_origins)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._front(scope, receive, send)

    def close_streams(self) -> None:
        """End the open ``/api/stream`` responses (the server is stopping)."""
        self.state.api.stream.close()


def create_app(rt: Runtime) -> Starlette:
    state = ApiState(rt)
    route_list = [
        Route(ALL_SPECS[name].path, handler, methods=["GET"], name=name)
        for name, handler in routes.ENDPOINT_HANDLERS.items()
    ]
    route_list += [
        Route("/api/analytics/{model_id}", routes.analytics_model, methods=["GET"], name="analytics-model"),
        Route("/healthz", routes.healthz, methods=["GET"]),
        Route("/readyz", routes.readyz, methods=["GET"]),
        Route("/openapi.json", routes.openapi_json, methods=["GET"]),
        Route("/metrics", routes.metrics, methods=["GET"]),
        Route("/api/stream", StreamEndpoint(state.stream), methods=["GET"], name="stream"),
        *dashboard_routes(),
    ]
    return ArenaApp(
        state,
        routes=route_list,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            psycopg.OperationalError: _api_error,
            PoolTimeout: _api_error,
        },
    )
