"""A copy of the shipped ``etc/`` for a test's own ``nof0 run`` subprocess: the manifest with the test's
settings, and a manager.yaml of built-in strategy traders on the sim market and exchange."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ETC

__all__ = ["strategy_trader", "write_etc", "pin_sim_market"]

# The sim market is a pure function of (seed, steps since its anchor), and these arenas run on the wall
# clock: left alone, a test trades whatever stretch of the path today's time falls on. Some stretches have
# the six symbols' EMA20/EMA50 and MACD disagreeing for ten minutes and more (no momentum entry at all: the
# kill -9, failover and dashboard tests, which wait for fills, failed from 16:58 to 17:08 UTC on
# 2026-12-01 and passed again at 17:12). With the anchor this long before the arena starts, every run
# trades the stretch that starts at 2026-12-01T17:14Z under the shipped anchor, where the traders open
# positions within seconds and keep trading, whatever the time of the run.
SIM_STRETCH_MS = 34_708_440_000  # 2026-12-01T17:14:00Z - 2025-10-26T00:00:00Z


def strategy_trader(*, interval_s: float, max_hold: str, **extra: Any) -> dict[str, Any]:
    """A momentum trader's settings (``id`` and ``name`` left to the caller); ``extra`` adds or replaces keys."""
    return {
        "exchange_provider": "sim", "market_provider": "sim", "model": "strategy:momentum",
        "prompt_template": "prompts/swing_momentum.tmpl", "decision_interval": f"{interval_s:g}s",
        "starting_capital_usd": 10000, "auto_start": True,
        "strategy_params": {"leverage": 3, "max_hold": max_hold},
        "risk_params": {"max_positions": 3, "max_position_size_usd": 500, "max_margin_usage_pct": 80,
                        "major_coin_leverage": 10, "altcoin_leverage": 5, "min_risk_reward_ratio": 1.5,
                        "min_confidence": 0.6, "min_liquidity_usd": 0},
        **extra,
    }


def write_etc(tmp: Path, settings: dict[str, dict[str, Any]], traders: list[dict[str, Any]]) -> Path:
    """``etc/`` copied under ``tmp``, each manifest section updated with ``settings`` (section -> keys) and
    manager.yaml holding ``traders``; returns the manifest's path."""
    etc = tmp / "etc"
    shutil.copytree(ETC.parent, etc)
    manifest = yaml.safe_load((etc / "nof0.yaml").read_text())
    for section, values in settings.items():
        manifest[section].update(values)
    (etc / "nof0.yaml").write_text(yaml.safe_dump(manifest))
    (etc / "manager.yaml").write_text(yaml.safe_dump({"traders": traders}))
    pin_sim_market(etc)
    return etc / "nof0.yaml"


def pin_sim_market(etc: Path) -> None:
    """Anchor the sim market of ``etc/`` so that an arena started now trades the same stretch of its path
    as every other run (``SIM_STRETCH_MS``)."""
    anchor_ms = int(time.time() * 1000) - SIM_STRETCH_MS
    anchor = datetime.fromtimestamp(anchor_ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    market = yaml.safe_load((etc / "market.yaml").read_text())
    for provider in market["providers"].values():
        if provider.get("type") == "sim":
            provider["anchor"] = anchor
    (etc / "market.yaml").write_text(yaml.safe_dump(market))
