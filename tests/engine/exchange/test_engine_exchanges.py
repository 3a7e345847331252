"""The engine runner builds every exchange and starts the ones its traders use."""

from __future__ import annotations

from nof0.engine.exchange.sim.exchange import SimExchange
from nof0.engine.runner import Engine


async def test_the_engine_starts_the_traders_exchanges_and_stops_them(rt):
    engine = Engine(rt, markets=[])  # no feed: no network
    assert set(engine.exchanges) == set(rt.config.exchange.providers)
    sim = engine.exchanges["sim"]
    assert isinstance(sim, SimExchange)
    async with engine.running():
        # manager.yaml's traders trade on "sim": their paper accounts are loaded (resting orders work at once)
        assert set(sim._traders) == {t.id for t in rt.config.manager.traders if t.exchange_provider == "sim"}
    assert sim._traders == {}
