"""Design 4.3: every ingest and engine log line carries the model, symbol and source event it concerns,
including the lines logged deep inside (a listener, the exchange, the publishers), in the JSON logs."""

from __future__ import annotations

import json

from nof0.ingest.service import IngestService
from nof0.kernel.events import SymbolEvent
from nof0.obs.logging import configure_logging, get_logger
from tests.engine.test_engine_executor import gateway, open_reply, start_session  # noqa: F401
from tests.ingest import factories as f

nested = get_logger("tests.nested")


def _lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


async def _log_each_batch(types: set[str]) -> None:
    nested.info("listener saw a batch", types=sorted(types))  # knows nothing of the batch's scope


async def test_an_ingest_batch_scopes_its_log_lines(rt, capsys):
    configure_logging("info", json=True)
    service = IngestService(rt)
    service.on_committed.append(_log_each_batch)
    report = await service.ingest([SymbolEvent(symbol="BTC"), SymbolEvent(symbol="ETH"),
                                   f.model("m1"), f.model("m2"),
                                   f.trade("m1_t1", model_id="m1", symbol="BTC"),
                                   f.trade("m2_t1", model_id="m2", symbol="ETH")], source="test:batch")
    assert report.ok, report.rejections
    nested.info("after the batch")
    lines = _lines(capsys.readouterr().err)
    (inside,) = [ln for ln in lines if ln["event"] == "listener saw a batch"]
    assert inside["model"] == "m1,m2" and inside["symbol"] == "BTC,ETH"
    assert inside["source_event"] == "model,symbol,trade" and inside["source"] == "test:batch"
    assert inside["level"] == "info" and inside["logger"] == "tests.nested" and inside["timestamp"]
    (after,) = [ln for ln in lines if ln["event"] == "after the batch"]
    assert not {"model", "symbol", "source_event", "source"} & set(after)  # the scope ends with the batch


async def test_a_trader_cycle_and_its_orders_scope_their_log_lines(rt, gateway, capsys):  # noqa: F811
    configure_logging("info", json=True)
    session = await start_session(rt, gateway, run_id="run-log")
    rt, ingest, mk, mgr = session.rt, session.ingest, session.market, session.manager
    ingest.on_committed.append(_log_each_batch)
    capsys.readouterr()
    gateway.push({"kind": "ok", "content": open_reply(mk.mark("BTC"), mk.mark("ETH"))})
    (result,) = await mgr.run_due()
    assert result.success
    lines = _lines(capsys.readouterr().err)

    # the guard's refusal of the ETH entry: the cycle's line, with its symbol
    (refused,) = [ln for ln in lines if ln["event"] == "decision rejected"]
    assert refused["model"] == "t1" and refused["symbol"] == "ETH" and refused["source_event"] == "decision_cycle"
    batches = [ln for ln in lines if ln["event"] == "listener saw a batch"]
    # the journal (before any order) and the BTC entry's fills, positions and orders, each in its scope
    journal = [b for b in batches if "decision_cycle" in b["types"]]
    assert journal and all(b["model"] == "t1" and b["source"] == "trader:t1" for b in journal)
    assert all("decision_cycle" in b["source_event"] for b in journal)
    orders = [b for b in batches if "fill" in b["types"]]
    assert orders, batches
    for b in orders:
        assert b["model"] == "t1" and b["symbol"] == "BTC" and b["source"] == "exchange:sim"
        assert "fill" in b["source_event"].split(",")

    # the cycle also counted its model call
    m = rt.metrics
    assert m.trader_tokens.labels("t1", "prompt")._value.get() > 0
    assert m.trader_cost_usd.labels("t1")._value.get() > 0
    assert m.sim_orders.labels("t1", "filled")._value.get() >= 1
    assert m.sim_fills.labels("t1", "BTC")._value.get() >= 1
