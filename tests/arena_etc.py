"""A copy of the shipped ``etc/`` for a test's own ``nof0 run`` subprocess: the manifest with the test's
settings, and a manager.yaml of built-in strategy traders on the sim market and exchange."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ETC

__all__ = ["strategy_trader", "write_etc"]


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
    return etc / "nof0.yaml"
