"""The dashboard's files as the API serves them: the page at ``/``, its assets, caching, the CSP, the
wheel's package data, and no HTML parsing of API strings in its scripts."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib import resources
from pathlib import Path

from nof0.api.dashboard import ASSET_TYPES

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "src" / "nof0" / "api" / "dashboard"


async def test_the_page_and_its_assets(client):
    page = await client.get("/", headers={"accept-encoding": "identity"})
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    html = page.text
    referenced = set(re.findall(r'(?:src|href)="/dashboard/([^"]+)"', html))
    assert referenced == {"style.css", "app.js"}
    for name, content_type in ASSET_TYPES.items():
        r = await client.get(f"/dashboard/{name}" if name != "index.html" else "/")
        assert r.status_code == 200 and r.headers["content-type"] == content_type.decode(), name
        assert r.headers["x-content-type-options"] == "nosniff"
    # module imports between the scripts name files that are served
    for script in FOLDER.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', script.read_text()):
            assert imported in ASSET_TYPES, (script.name, imported)


async def test_etag_revalidation_and_gzip(client):
    first = await client.get("/dashboard/app.js", headers={"accept-encoding": "identity"})
    assert first.headers["cache-control"] == "no-cache"
    again = await client.get("/dashboard/app.js", headers={"if-none-match": first.headers["etag"],
                                                           "accept-encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    zipped = await client.get("/dashboard/app.js", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == first.content
    head = await client.head("/")
    assert head.status_code == 200 and head.content == b""


async def test_unknown_files_are_404(client):
    for path in ("/dashboard/secret.py", "/dashboard/__init__.py", "/dashboard/..%2fapp.py", "/index.html"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"] == "not_found"


def test_every_dashboard_file_is_served_and_shipped_in_the_wheel():
    files = {p.name for p in FOLDER.iterdir() if p.is_file() and p.suffix != ".py"}
    assert files == set(ASSET_TYPES)
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["nof0"]
    for name in files:
        assert any(fnmatch.fnmatch(f"api/dashboard/{name}", g) for g in globs), name
    assert {p.name for p in resources.files("nof0.api.dashboard").iterdir()} >= files


def test_scripts_never_parse_api_text_as_html():
    # model chat is untrusted: text goes in as text nodes, never through an HTML parser
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment"
                           r"|\beval\(|new Function\(")
    for script in FOLDER.glob("*.js"):
        assert not forbidden.search(script.read_text()), script.name
    assert "<script>" not in (FOLDER / "index.html").read_text()  # no inline script: the CSP forbids it
