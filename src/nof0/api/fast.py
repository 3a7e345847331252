"""The hot path: GET/HEAD of a whole endpoint answered straight from its encoded payload.

Sits in front of the Starlette router for the requests that need no routing: one of the
endpoint paths, no query parameters the endpoint defines. It asks the endpoint's source for the
payload (the same read path as the routes), picks the representation from the request headers
and sends prebuilt headers and bytes: no Request/Response objects, no header building per request.
Everything else (parameters, per-model analytics, health, errors of any other kind) goes on to
Starlette. ``responses.payload_parts`` makes both paths answer byte for byte the same.
"""

from __future__ import annotations

from typing import Any

from nof0.api.responses import as_api_error, error_parts, payload_parts
from nof0.api.spec import ALL_SPECS
from nof0.api.state import ApiState

__all__ = ["FastPath"]

class FastPath:
    def __init__(self, app: Any, state: ApiState) -> None:
        self.app = app
        self.state = state
        self.paths = {spec.path: name for name, spec in ALL_SPECS.items()}
        self.max_age = {name: state.max_age(name) for name in ALL_SPECS}
        # endpoints whose query parameters change the answer are served here only without a query
        self.parameterised = {name for name, spec in ALL_SPECS.items() if spec.parameters}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        name = self.paths.get(scope["path"]) if scope["type"] == "http" else None
        if name is None or scope["method"] not in ("GET", "HEAD") or \
                (scope["query_string"] and name in self.parameterised):
            await self.app(scope, receive, send)
            return
        try:
            payload = await self.state.payload(name)
        except Exception as exc:
            err = as_api_error(exc)
            if err is None:
                raise
            status, headers, body = error_parts(err)
        else:
            accept = inm = None
            for key, value in scope["headers"]:  # one pass over the request headers
                if key == b"accept-encoding":
                    accept = value.decode("latin-1")
                elif key == b"if-none-match":
                    inm = value.decode("latin-1")
            status, headers, body = payload_parts(payload, self.max_age[name], accept, inm, scope["method"] == "HEAD")
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
