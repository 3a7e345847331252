"""HTTP behaviour users rely on: ETag/304, gzip, Cache-Control, CORS, 400/404/405, OpenAPI, health."""

from __future__ import annotations

import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from nof0.api.app import create_app
from nof0.api.openapi import openapi_document
from nof0.api.spec import SPECS
from nof0.endpoints import ENDPOINTS
from tests.api.conftest import client_for
from tests.api.seed import seed_snapshot


async def test_etag_and_304(clock_rt, client):
    await seed_snapshot(clock_rt)
    r = await client.get("/api/trades", headers={"accept-encoding": "identity"})
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "public, max-age=60"
    same = await client.get("/api/trades", headers={"if-none-match": etag, "accept-encoding": "identity"})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    listed = await client.get("/api/trades", headers={"if-none-match": f'"x", W/{etag}'})
    assert listed.status_code == 304
    stale = await client.get("/api/trades", headers={"if-none-match": '"0123"'})
    assert stale.status_code == 200 and stale.content


async def test_gzip_for_large_bodies_only(clock_rt, client):
    await seed_snapshot(clock_rt)
    plain = await client.get("/api/trades", headers={"accept-encoding": "identity"})
    zipped = await client.get("/api/trades", headers={"accept-encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["vary"]
    assert zipped.content == plain.content  # httpx decodes: the same body
    assert int(zipped.headers["content-length"]) < len(plain.content) / 5
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert (await client.get("/api/trades", headers={"accept-encoding": "gzip;q=0"})).headers.get(
        "content-encoding") is None
    # either representation's ETag names the same version
    again = await client.get("/api/trades", headers={"if-none-match": plain.headers["etag"],
                                                    "accept-encoding": "gzip"})
    assert again.status_code == 304
    small = await client.get("/api/leaderboard", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in small.headers and "Accept-Encoding" not in small.headers.get("vary", "")


async def test_gzip_bytes_are_valid_gzip(clock_rt):
    await seed_snapshot(clock_rt)
    status, sent = await _asgi_get(create_app(clock_rt), "/api/trades", headers=[(b"accept-encoding", b"gzip")])
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert status == 200 and gzip.decompress(body).startswith(b'{"trades":[')


async def test_cors_from_configuration(clock_rt):
    clock_rt.config.root.api.cors_origins = ["https://dash.example"]
    async with client_for(clock_rt) as c:
        ok = await c.get("/api/leaderboard", headers={"origin": "https://dash.example"})
        other = await c.get("/api/leaderboard", headers={"origin": "https://evil.example"})
        error = await c.get("/api/analytics/nobody", headers={"origin": "https://dash.example"})
        preflight = await c.options("/api/trades", headers={"origin": "https://dash.example",
                                                            "access-control-request-method": "GET",
                                                            "access-control-request-headers": "if-none-match"})
        refused = await c.options("/api/trades", headers={"origin": "https://evil.example",
                                                          "access-control-request-method": "GET"})
    assert ok.headers["access-control-allow-origin"] == "https://dash.example"
    assert "etag" in ok.headers["access-control-expose-headers"].lower()
    assert "Origin" in ok.headers["vary"] and "Origin" in other.headers["vary"]
    assert "access-control-allow-origin" not in other.headers
    assert error.status_code == 404 and error.headers["access-control-allow-origin"] == "https://dash.example"
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://dash.example"
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "if-none-match"
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


async def test_cors_any_origin(client):
    r = await client.get("/api/trades", headers={"origin": "https://anyone.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "Origin" not in r.headers.get("vary", "")
    assert "access-control-allow-origin" not in (await client.get("/api/trades")).headers


async def test_fast_path_and_routes_answer_alike(clock_rt, client):
    await seed_snapshot(clock_rt)
    from tests.api.seed import load, seed_positions_file

    await seed_positions_file(clock_rt, load("positions.json")["accountTotals"])
    kept = ("content-type", "etag", "cache-control", "vary", "content-encoding", "content-length")
    for enc in ("identity", "gzip"):
        fast = await client.get("/api/positions", headers={"accept-encoding": enc})
        routed = await client.get("/api/positions?unrelated=1", headers={"accept-encoding": enc})
        assert fast.status_code == routed.status_code == 200
        assert fast.content == routed.content
        assert {k: fast.headers.get(k) for k in kept} == {k: routed.headers.get(k) for k in kept}
    head = await client.head("/api/positions")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == fast.headers["content-length"]


async def test_bad_parameters_answer_400_naming_them(client):
    for path, name in [("/api/account-totals?lastHourlyMarker=abc", "lastHourlyMarker"),
                       ("/api/account-totals?lastHourlyMarker=-1", "lastHourlyMarker"),
                       ("/api/account-totals?lastHourlyMarker=1e3", "lastHourlyMarker"),
                       ("/api/account-totals?lastHourlyMarker=%EF%BC%91", "lastHourlyMarker"),  # fullwidth 1
                       ("/api/account-totals?lastHourlyMarker=1&lastHourlyMarker=2", "lastHourlyMarker"),
                       ("/api/account-totals?lastHourlyMarker=99999999999", "lastHourlyMarker"),
                       ("/api/positions?limit=0", "limit"), ("/api/positions?limit=", "limit")]:
        r = await client.get(path)
        assert r.status_code == 400, path
        assert r.json()["parameter"] == name and name in r.json()["detail"]
        assert r.headers["content-type"] == "application/json"


async def test_unknown_things_answer_json_404_and_405(client):
    for path in ["/api/analytics/nobody", "/api/analytics/a%20b", "/api/analytics/" + "x" * 65,
                 "/api/nothing", "/api/analytics/..", "/api/analytics/%2e%2e%2fetc"]:
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"] == "not_found"
    r = await client.post("/api/trades")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


async def test_unknown_parameters_are_ignored(client):
    assert (await client.get("/api/trades?_=123&limit=x")).status_code == 200


async def _asgi_get(app, path: str, query: bytes = b"", headers=()) -> tuple[int, list[dict]]:
    """One GET straight through the ASGI app, with the raw query bytes a server would pass."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": list(headers), "http_version": "1.1", "scheme": "http", "server": ("test", 80),
             "client": ("test", 1), "root_path": ""}
    await app(scope, receive, send)
    return sent[0]["status"], sent


_PARAM = st.sampled_from(["lastHourlyMarker", "limit", "_", "lastHourlyMarker[]", "", "%00", "limit%3D1"])
_VALUE = st.one_of(st.integers(-10**15, 10**15).map(str), st.text(max_size=12), st.just("%ff%fe"), st.just(""))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/account-totals", "/api/positions", "/api/trades", "/api/analytics/x"]),
       query=st.one_of(
           st.binary(max_size=60),
           st.lists(st.tuples(_PARAM, _VALUE), max_size=3).map(
               lambda kv: "&".join(f"{k}={v}" for k, v in kv).encode("utf-8", "surrogatepass"))))
async def test_no_query_string_produces_a_500(clock_rt, path, query):
    status, _ = await _asgi_get(create_app(clock_rt), path, query)
    assert status in (200, 400, 404), (path, query, status)


async def test_openapi_describes_every_route(clock_rt, client):
    doc = (await client.get("/openapi.json")).json()
    app = create_app(clock_rt)
    paths = {r.path for r in app.routes if isinstance(r, Route)}
    assert paths == set(doc["paths"]) == set(openapi_document()["paths"])
    assert {f"/api/{name}" for name in ENDPOINTS} <= paths
    for spec in SPECS.values():  # the query parameters each endpoint defines, and no other
        documented = doc["paths"][spec.path]["get"].get("parameters", [])
        assert [p["name"] for p in documented] == list(spec.parameters), spec.name
    assert "404" in doc["paths"]["/api/analytics/{model_id}"]["get"]["responses"]


async def test_openapi_declares_the_bounds_the_server_enforces(clock_rt, client):
    doc = (await client.get("/openapi.json")).json()
    checked = 0
    for path, item in doc["paths"].items():
        for param in item.get("get", {}).get("parameters", []):
            if param["in"] != "query":
                continue
            schema = param["schema"]
            assert schema["type"] == "integer" and {"minimum", "maximum"} <= schema.keys(), (path, param)
            name, lo, hi = param["name"], schema["minimum"], schema["maximum"]
            for value, status in ((lo, 200), (hi, 200), (hi + 1, 400), (lo - 1, 400)):
                r = await client.get(path, params={name: str(value)})
                assert r.status_code == status, (path, name, value, r.text)
            checked += 1
    assert checked == 2  # /api/positions?limit, /api/account-totals?lastHourlyMarker


def test_spec_names_every_endpoint():
    assert tuple(SPECS) == ENDPOINTS


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "migrations": "current"}}


async def test_readyz_names_what_is_missing(dead_redis_rt):
    async with client_for(dead_redis_rt) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable" and body["reason"].startswith("redis:")
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"] == "failed"


async def test_postgres_down_answers_503(clock_rt, dead_redis_rt):
    await clock_rt.pool.close()  # the database is gone (and Redis holds nothing)
    async with client_for(dead_redis_rt) as c:
        for path in ("/api/trades", "/api/account-totals?lastHourlyMarker=3", "/api/analytics/gpt-5"):
            r = await c.get(path)  # the fast path, and routes with parameters
            assert r.status_code == 503 and r.json()["error"] == "unavailable", path
            assert r.headers["cache-control"] == "no-store"


async def test_metrics_exposes_design_observability(client):
    await client.get("/api/trades")  # one read through the read path
    resp = await client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'nof0_table_rows{table="price_ticks"}' in text and 'nof0_table_rows{table="trades"}' in text
    assert "nof0_redis_keys " in text
    assert 'nof0_cache_requests_total{endpoint="trades"' in text
