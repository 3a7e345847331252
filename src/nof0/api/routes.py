"""One handler per endpoint of nof1-api.md, plus ``/healthz``, ``/readyz`` and ``/openapi.json``.

Handlers validate their query parameters, ask the endpoint's source for the encoded payload, derive
a parameterised variant when asked, and answer with ``responses.payload_response``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nof0.api.account_totals import records_from_marker
from nof0.api.errors import NotFound
from nof0.api.health import readiness
from nof0.api.params import LAST_HOURLY_MARKER, POSITIONS_LIMIT
from nof0.api.responses import json_response, payload_response
from nof0.api.sources import ALL_VARIANT
from nof0.api.state import ApiState
from nof0.cache.keys import InvalidKeyPart, validate_part
from nof0.obs.exposition import CONTENT_TYPE_LATEST, render_metrics

__all__ = ["ENDPOINT_HANDLERS", "healthz", "readyz", "openapi_json", "analytics_model"]


def _state(request: Request) -> ApiState:
    return request.app.state.api


async def _serve(request: Request, name: str, variant: str = ALL_VARIANT) -> Response:
    api = _state(request)
    return payload_response(request, await api.payload(name, variant), api.max_age(name))


async def crypto_prices(request: Request) -> Response:
    return await _serve(request, "crypto-prices")


def _first_models(body: dict[str, Any], limit: int) -> dict[str, Any]:
    accounts = body.get("accountTotals")
    return {**body, "accountTotals": accounts[:limit] if isinstance(accounts, list) else []}


async def positions(request: Request) -> Response:
    limit = POSITIONS_LIMIT.read(request.query_params)
    api = _state(request)
    payload = await api.payload("positions")
    if limit is not None:
        payload = api.derived.get(payload, ("positions.limit", limit), lambda body: _first_models(body, limit))
    return payload_response(request, payload, api.max_age("positions"))


async def account_totals(request: Request) -> Response:
    marker = LAST_HOURLY_MARKER.read(request.query_params)
    api = _state(request)
    payload = await api.payload("account-totals")
    if marker is not None:
        payload = api.derived.get(payload, ("account-totals.from", marker),
                                  lambda body: records_from_marker(body, marker))
    return payload_response(request, payload, api.max_age("account-totals"))


async def trades(request: Request) -> Response:
    return await _serve(request, "trades")


async def since_inception_values(request: Request) -> Response:
    return await _serve(request, "since-inception-values")


async def leaderboard(request: Request) -> Response:
    return await _serve(request, "leaderboard")


async def analytics(request: Request) -> Response:
    return await _serve(request, "analytics")


async def analytics_model(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    try:
        validate_part("model_id", model_id)  # an id that could never be stored cannot exist
    except InvalidKeyPart:
        raise NotFound(f"unknown model {model_id[:64]!r}") from None
    return await _serve(request, "analytics", model_id)


async def conversations(request: Request) -> Response:
    return await _serve(request, "conversations")


async def traders(request: Request) -> Response:
    return await _serve(request, "traders")


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"}, headers={"cache-control": "no-store"})


async def readyz(request: Request) -> Response:
    ready, body = await readiness(_state(request).rt)
    return json_response(body, 200 if ready else 503, {"cache-control": "no-store"})


async def metrics(request: Request) -> Response:
    """Prometheus text format (design 4.3); not cached."""
    body = await render_metrics(_state(request).rt)
    return Response(body, headers={"content-type": CONTENT_TYPE_LATEST, "cache-control": "no-store"})


async def openapi_json(request: Request) -> Response:
    state = _state(request)
    return payload_response(request, state.openapi, int(state.rt.config.ttl.seconds("long")))


ENDPOINT_HANDLERS = {
    "crypto-prices": crypto_prices,
    "positions": positions,
    "account-totals": account_totals,
    "trades": trades,
    "since-inception-values": since_inception_values,
    "leaderboard": leaderboard,
    "analytics": analytics,
    "conversations": conversations,
    "traders": traders,
}
