"""The arena dashboard: a page, a stylesheet and scripts written here, served by the API at ``/``.

The page reads only the public API (``/api/*``) and ``/api/stream``; no build step, no CDN. The files
are package data, read once when the app is built (never at import time) and served with an ETag
(``no-cache``: a browser revalidates and gets 304 until the package changes), gzip when accepted,
and a Content-Security-Policy that allows only this origin's scripts, styles and requests: model chat
is untrusted text, and the page's own code never parses it as HTML.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nof0.api.errors import NotFound
from nof0.api.responses import EncodedResponse, accepts_gzip, etag_matches

__all__ = ["DashboardAssets", "dashboard_routes", "ASSET_TYPES"]

ASSET_TYPES = {
    "index.html": b"text/html; charset=utf-8",
    "style.css": b"text/css; charset=utf-8",
    "app.js": b"text/javascript; charset=utf-8",
    "chart.js": b"text/javascript; charset=utf-8",
    "dom.js": b"text/javascript; charset=utf-8",
}

_CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gz: bytes
    etag: str
    content_type: bytes


class DashboardAssets:
    """The dashboard's files, loaded from the package once."""

    def __init__(self) -> None:
        folder = resources.files(__name__)
        self.assets: dict[str, _Asset] = {}
        for name, content_type in ASSET_TYPES.items():
            body = folder.joinpath(name).read_bytes()
            etag = hashlib.blake2b(body, digest_size=12).hexdigest()
            self.assets[name] = _Asset(body, gzip.compress(body, 6, mtime=0), etag, content_type)

    def response(self, request: Request, name: str) -> Response:
        asset = self.assets.get(name)
        if asset is None:
            raise NotFound(f"no dashboard file {name[:64]!r}")
        gz = accepts_gzip(request.headers.get("accept-encoding"))
        etag = f'"{asset.etag}-gz"' if gz else f'"{asset.etag}"'
        headers = [(b"content-type", asset.content_type), (b"etag", etag.encode()),
                   (b"cache-control", b"no-cache"), (b"vary", b"Accept-Encoding"),
                   (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if name == "index.html":
            headers.append((b"content-security-policy", _CSP))
        inm = request.headers.get("if-none-match")
        if inm is not None and etag_matches(inm, asset.etag):
            return EncodedResponse(304, headers, b"")
        body = asset.gz if gz else asset.body
        if gz:
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        return EncodedResponse(200, headers, b"" if request.method == "HEAD" else body)


def dashboard_routes() -> list[Route]:
    assets = DashboardAssets()

    async def page(request: Request) -> Response:
        return assets.response(request, "index.html")

    async def asset(request: Request) -> Response:
        return assets.response(request, request.path_params["name"])

    return [
        Route("/", page, methods=["GET"], name="dashboard"),
        Route("/dashboard/{name}", asset, methods=["GET"], name="dashboard-asset"),
    ]
