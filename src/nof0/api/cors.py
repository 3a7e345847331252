"""CORS from ``api.cors_origins``: one small ASGI layer for every response, preflight included.

With ``"*"`` every origin is allowed and answers carry ``Access-Control-Allow-Origin: *``. With a
list, an allowed origin is echoed and every answer carries ``Vary: Origin`` (shared caches must not
give one origin's answer to another). Requests without an ``Origin`` header pass through untouched,
so server-side pollers pay nothing for it.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

__all__ = ["CorsMiddleware", "request_header"]

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

_EXPOSE = (b"access-control-expose-headers", b"ETag")
_METHODS = b"GET, HEAD, OPTIONS"


def request_header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = {o.encode() for o in origins}

    def _allow(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*"), _EXPOSE]
        if origin in self.origins:
            return [(b"access-control-allow-origin", origin), _EXPOSE]
        return []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_header(scope, b"origin")
        if origin is not None and scope["method"] == "OPTIONS" and \
                request_header(scope, b"access-control-request-method") is not None:
            await self._preflight(scope, origin, send)
            return
        extra = self._allow(origin) if origin is not None else []
        if not self.any_origin:
            extra.append((b"vary", b"Origin"))
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, origin: bytes, send: Any) -> None:
        allow = self._allow(origin)
        method = request_header(scope, b"access-control-request-method") or b""
        ok = bool(allow) and method.upper() in (b"GET", b"HEAD")
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if ok:
            headers += [*allow, (b"access-control-allow-methods", _METHODS), (b"access-control-max-age", b"600")]
            if requested := request_header(scope, b"access-control-request-headers"):
                headers.append((b"access-control-allow-headers", requested))
        await send({"type": "http.response.start", "status": 204 if ok else 403, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
