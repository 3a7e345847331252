"""Names of the public API endpoints (nof1-api.md), shared by configuration and the API.

The name is the path below ``/api/``; ``etc/nof0.yaml`` uses it in ``api.data_sources`` to pick the
``file`` or ``db`` source per endpoint (design 5, cutover by feature flag).
"""

ENDPOINTS: tuple[str, ...] = (
    "crypto-prices",
    "positions",
    "account-totals",
    "trades",
    "since-inception-values",
    "leaderboard",
    "analytics",
    "conversations",
)
