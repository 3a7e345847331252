"""The Starlette application factory. Nothing happens at import time: ``create_app(rt)`` builds it
from a runtime (composition root), so ``nof0 serve``, ``nof0 run`` and the tests share one path.

Errors are JSON: ``ApiError`` subclasses (400, 404, 503), unknown paths (404) and methods (405);
Postgres unreachable answers 503. CORS comes from ``api.cors_origins``.
"""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nof0.api import routes
from nof0.api.errors import ApiError, Unavailable
from nof0.api.responses import error_response, json_response
from nof0.api.spec import SPECS
from nof0.api.state import ApiState
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["create_app"]

log = get_logger("nof0.api")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return json_response({"error": error, "detail": exc.detail}, exc.status_code, exc.headers)


async def _storage_error(request: Request, exc: Exception) -> Response:
    log.warning("postgres unavailable", path=request.url.path, error=str(exc))
    return error_response(Unavailable("the database is unreachable; retry shortly"))


def create_app(rt: Runtime) -> Starlette:
    state = ApiState(rt)
    route_list = [
        Route(SPECS[name].path, handler, methods=["GET"], name=name)
        for name, handler in routes.ENDPOINT_HANDLERS.items()
    ]
    route_list += [
        Route("/api/analytics/{model_id}", routes.analytics_model, methods=["GET"], name="analytics-model"),
        Route("/healthz", routes.healthz, methods=["GET"]),
        Route("/readyz", routes.readyz, methods=["GET"]),
        Route("/openapi.json", routes.openapi_json, methods=["GET"]),
    ]
    app = Starlette(
        routes=route_list,
        middleware=[Middleware(
            CORSMiddleware,
            allow_origins=rt.config.root.api.cors_origins,
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["ETag"],
            max_age=600,
        )],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            psycopg.OperationalError: _storage_error,
            PoolTimeout: _storage_error,
        },
    )
    app.state.api = state
    return app
