"""The endpoints of nof1-api.md as data: path, TTL class, snapshot file, whether ``serverTime`` is sent.

The TTL class bounds how old a cached response may be (design 3.1) and sets ``Cache-Control``
``max-age``. It follows design 3.2 where the design names the data: prices and open positions are
``short``, the leaderboard and the trades list ``medium``, since-inception and analytics ``long``.
The hourly account series is ``medium`` (it grows by the hour, but dashboards poll it every few
seconds). Conversations are ``medium`` rather than the Redis list's ``long``: the list is appended on
every message, while a cached response only changes when it expires, and chat should not lag 5 min.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EndpointSpec", "SPECS", "ARENA_SPECS", "ALL_SPECS", "FACT_ENDPOINTS"]


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    name: str  # the name in nof0.endpoints and api.data_sources
    ttl_class: str
    server_time: bool  # nof1's body carries serverTime (every endpoint but the leaderboard)
    file_name: str  # in a nof1 snapshot folder
    parameters: tuple[str, ...] = ()  # query parameters that change the answer

    @property
    def path(self) -> str:
        return f"/api/{self.name}"


SPECS: dict[str, EndpointSpec] = {
    s.name: s
    for s in (
        EndpointSpec("crypto-prices", "short", True, "crypto-prices.json"),
        EndpointSpec("positions", "short", True, "positions.json", ("limit",)),
        EndpointSpec("account-totals", "medium", True, "account-totals.json", ("lastHourlyMarker",)),
        EndpointSpec("trades", "medium", True, "trades.json"),
        EndpointSpec("since-inception-values", "long", True, "since-inception-values.json"),
        EndpointSpec("leaderboard", "medium", False, "leaderboard.json"),
        EndpointSpec("analytics", "long", True, "analytics.json"),
        EndpointSpec("conversations", "medium", True, "conversations.json"),
    )
}

# Endpoints whose bodies are facts (stored rows); the others are computed from the facts, so parity
# reports their differences without failing (issue: "derived endpoints ... without failing").
FACT_ENDPOINTS = frozenset({"trades", "crypto-prices", "since-inception-values", "positions", "conversations"})

# Endpoints of this arena beyond nof1's API (the dashboard reads them): always the db source, no
# snapshot file, no parity. ``traders`` is short: a pause or a new decision should show within seconds.
ARENA_SPECS: dict[str, EndpointSpec] = {
    s.name: s
    for s in (
        EndpointSpec("traders", "short", True, ""),
    )
}

ALL_SPECS: dict[str, EndpointSpec] = {**SPECS, **ARENA_SPECS}
