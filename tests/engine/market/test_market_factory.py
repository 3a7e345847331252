"""Market providers built from market.yaml; the configuration's market keys and their errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nof0.config import ConfigError, load_config
from nof0.engine.market.factory import build_market_provider
from nof0.engine.market.hyperliquid.provider import HyperliquidMarket
from nof0.engine.market.replay import ReplayMarket
from nof0.engine.market.sim import SimMarket
from tests.conftest import ETC


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    d = tmp_path / "etc"
    shutil.copytree(ETC.parent, d)
    return d


def add_provider(etc: Path, text: str) -> None:
    path = etc / "market.yaml"
    path.write_text(path.read_text() + text)


def test_shipped_providers_and_base_url_overrides():
    cfg = load_config(ETC, env={})
    assert set(cfg.market.providers) == {"hyperliquid", "hyperliquid_testnet", "sim"}
    assert cfg.market.providers["hyperliquid"].base_url == "https://api.hyperliquid.xyz"
    assert cfg.market.providers["hyperliquid_testnet"].base_url == "https://api.hyperliquid-testnet.xyz"
    env = {"NOF0_HYPERLIQUID_BASE_URL": "http://127.0.0.1:8081", "NOF0_HYPERLIQUID_TESTNET_BASE_URL": "http://h:1"}
    cfg = load_config(ETC, env=env)
    assert cfg.market.providers["hyperliquid"].base_url == "http://127.0.0.1:8081"
    assert cfg.market.providers["hyperliquid_testnet"].base_url == "http://h:1"
    assert cfg.market.providers["sim"].seed == 42


def test_every_base_url_in_market_yaml_reads_the_environment():
    for line in (ETC.parent / "market.yaml").read_text().splitlines():
        if line.strip().startswith("base_url:"):
            assert "${NOF0_" in line and "_BASE_URL:-" in line, line


async def test_each_type_is_built(rt):
    rt.config.market.providers["replay"] = rt.config.market.providers["sim"].__class__(
        type="replay", symbols=["BTC"], start=1_761_436_800_000, end=1_761_523_200_000, speed=60)
    hl = build_market_provider(rt, "hyperliquid")
    assert isinstance(hl, HyperliquidMarket) and hl.ws_url == "wss://api.hyperliquid.xyz/ws"
    assert hl.symbols == ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP") and hl.ping_interval_s == 20
    sim = build_market_provider(rt, "sim")
    assert isinstance(sim, SimMarket) and sim.seed == 42 and sim.anchor_ms == 1_761_436_800_000
    rp = build_market_provider(rt, "replay")
    assert isinstance(rp, ReplayMarket) and (rp.start_ms, rp.end_ms, rp.speed) == (
        1_761_436_800_000, 1_761_523_200_000, 60)
    with pytest.raises(ConfigError, match="no market provider named 'nope'"):
        build_market_provider(rt, "nope")


async def test_a_sim_symbol_without_levels_is_a_configuration_error(rt):
    rt.config.market.providers["sim"].symbols.append("HYPE")
    with pytest.raises(ConfigError, match=r"market.yaml: providers.sim.assets: .*no starting price for HYPE"):
        build_market_provider(rt, "sim")


@pytest.mark.parametrize("text, where", [
    ("  r:\n    type: replay\n    symbols: [BTC]\n    start: 2025-10-27T00:00:00Z\n    end: 2025-10-26T00:00:00Z\n",
     "providers.r.end"),
    ("  r:\n    type: replay\n    symbols: [BTC]\n    start: yesterday\n    end: 2025-10-26T00:00:00Z\n",
     "providers.r.start"),
    ("  r:\n    type: replay\n    start: 2025-10-25T00:00:00Z\n    end: 2025-10-26T00:00:00Z\n", "providers.r.symbols"),
    ("  s:\n    type: sim\n    anchor: 2025-10-26T00:00:00\n", "providers.s.anchor"),
    ("  s:\n    type: sim\n    ws_candles: [7m]\n", "providers.s.ws_candles[0]"),
    ("  h:\n    type: hyperliquid\n    base_url: api.hyperliquid.xyz\n", "providers.h.base_url"),
    ("  h:\n    type: hyperliquid\n    base_url: http://x\n    symbols: [BTC, 'a b']\n", "providers.h"),
    ("  r:\n    type: replay\n    symbols: [BTC]\n    start: '2025-10-26 00:00:00+02:00'\n", "providers.r.end"),
    ("  h:\n    type: kraken\n", "providers.h.type"),
])
def test_market_configuration_errors_name_the_key(etc, text, where):
    add_provider(etc, text)
    with pytest.raises(ConfigError) as err:
        load_config(etc / "nof0.yaml", env={})
    assert err.value.file.endswith("market.yaml") and err.value.path == where


def test_an_unknown_default_provider(etc):
    path = etc / "market.yaml"
    path.write_text(path.read_text().replace("default: hyperliquid", "default: binance"))
    with pytest.raises(ConfigError, match="market.yaml: default: names unknown provider 'binance'"):
        load_config(etc / "nof0.yaml", env={})


def test_times_are_rfc3339_with_a_zone_quoted_or_not(etc):
    add_provider(etc, "  r:\n    type: replay\n    symbols: [BTC]\n    start: 2025-10-26T00:00:00Z\n"
                      "    end: '2025-10-26T03:00:00+02:00'\n    speed: 0\n"
                      "  s:\n    type: sim\n    anchor: '2025-01-01T00:00:00.250Z'\n")
    cfg = load_config(etc / "nof0.yaml", env={})
    r = cfg.market.providers["r"]
    assert (r.start, r.end, r.speed) == (1_761_436_800_000, 1_761_436_800_000 + 3_600_000, 0)
    assert cfg.market.providers["s"].anchor == 1_735_689_600_250


def test_a_time_without_a_zone_is_refused(etc):
    add_provider(etc, "  s:\n    type: sim\n    anchor: 2025-10-26T00:00:00\n")
    with pytest.raises(ConfigError, match=r"providers.s.anchor: .*needs a time zone"):
        load_config(etc / "nof0.yaml", env={})
