"""build_exchanges: one exchange per etc/exchange.yaml entry, base URLs from the environment."""

from __future__ import annotations

import pytest

from nof0.config import ConfigError
from nof0.engine.exchange.factory import build_exchanges
from nof0.engine.exchange.hyperliquid.client import HyperliquidExchange
from nof0.engine.exchange.sim.exchange import SimExchange
from nof0.runtime import Runtime
from tests.conftest import make_config


def _rt(config) -> Runtime:
    return Runtime(config=config, servers=None, pool=None, redis=None, keys=None, metrics=None)  # type: ignore[arg-type]


def test_every_configured_provider_becomes_an_exchange(test_servers, redis_prefix):
    config = make_config("postgresql://x@127.0.0.1/x", test_servers.redis_url, redis_prefix,
                         NOF0_HYPERLIQUID_BASE_URL="http://127.0.0.1:8123",
                         NOF0_HYPERLIQUID_TESTNET_BASE_URL="http://127.0.0.1:8124")
    exchanges = build_exchanges(_rt(config), {})
    assert set(exchanges) == {"hyperliquid", "hyperliquid_testnet", "sim"}
    assert isinstance(exchanges["sim"], SimExchange)
    hl, testnet = exchanges["hyperliquid"], exchanges["hyperliquid_testnet"]
    assert isinstance(hl, HyperliquidExchange) and hl.base_url == "http://127.0.0.1:8123" and hl.mainnet
    assert testnet.base_url == "http://127.0.0.1:8124" and not testnet.mainnet


def test_the_shipped_base_urls_are_the_venue_s(test_servers, redis_prefix):
    config = make_config("postgresql://x@127.0.0.1/x", test_servers.redis_url, redis_prefix)
    exchanges = build_exchanges(_rt(config), {})
    assert exchanges["hyperliquid"].base_url == "https://api.hyperliquid.xyz"
    assert exchanges["hyperliquid_testnet"].base_url == "https://api.hyperliquid-testnet.xyz"


def test_a_bad_private_key_is_a_config_error_naming_the_key_but_not_its_value(test_servers, redis_prefix):
    secret = "0x" + "ab" * 31 + "zz"
    config = make_config("postgresql://x@127.0.0.1/x", test_servers.redis_url, redis_prefix,
                         HYPERLIQUID_PRIVATE_KEY=secret)
    with pytest.raises(ConfigError, match=r"exchange.yaml: providers.hyperliquid.private_key") as info:
        build_exchanges(_rt(config), {})
    assert "abab" not in str(info.value)
