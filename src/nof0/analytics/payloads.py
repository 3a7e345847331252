"""nof1 shapes of the derived endpoints: ``/api/leaderboard`` and ``/api/since-inception-values``."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from nof0.timefmt import dt_to_s

__all__ = ["leaderboard_entry", "leaderboard_payload", "since_inception_entry", "since_inception_payload"]


def leaderboard_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["model_id"],
        "num_trades": row["num_trades"],
        "sharpe": row["sharpe"],
        "win_dollars": row["win_dollars"],
        "num_losses": row["num_losses"],
        "lose_dollars": row["lose_dollars"],
        "return_pct": row["return_pct"],
        "equity": row["equity"],
        "num_wins": row["num_wins"],
    }


def leaderboard_payload(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """nof1's leaderboard body has no ``serverTime``."""
    return {"leaderboard": [leaderboard_entry(r) for r in rows]}


def since_inception_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]) if row["id"] is not None else None,
        "nav_since_inception": row["nav_since_inception"],
        "inception_date": dt_to_s(row["inception_at"]),
        "num_invocations": row["num_invocations"],
        "model_id": row["model_id"],
    }


def since_inception_payload(rows: Iterable[Mapping[str, Any]], server_time_ms: int) -> dict[str, Any]:
    return {"sinceInceptionValues": [since_inception_entry(r) for r in rows], "serverTime": server_time_ms}
