"""The LLM client against the local fake gateway: every outcome recorded, retries on 429/5xx/timeouts,
structured output asked for and dropped where the gateway refuses it, no secret in any record."""

from __future__ import annotations

import pytest

from nof0.config import LLMConfig, LLMModel
from nof0.engine.llm.client import LLMClient, ModelUnavailable, cost_usd
from nof0.engine.traders.contract import ContractError, parse_reply
from nof0.kernel.clock import FixedClock
from tests.fakes.openai_gateway import FakeGateway

T0 = 1_761_400_000_000


def _config(base_url: str, **kw) -> LLMConfig:
    models = {name: LLMModel(provider_model=f"fake-{name}", max_tokens=256, input_usd_per_mtok=1.0,
                             output_usd_per_mtok=4.0)
              for name in ("ok", "slow", "429", "500", "malformed", "truncated", "reasoning", "fenced",
                           "no_json_mode")}
    return LLMConfig(base_url=base_url, api_key=kw.pop("api_key", "sk-test-secret"), timeout=kw.pop("timeout", 2.0),
                     max_retries=kw.pop("max_retries", 2), retry_backoff=0.001, retry_backoff_max=0.01,
                     models=models, **kw)


@pytest.fixture
async def gateway():
    gw = FakeGateway()
    async with gw.running():
        yield gw


def _client(gw: FakeGateway, **kw) -> tuple[LLMClient, list[float]]:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    return LLMClient(_config(gw.base_url, **kw), FixedClock(T0), sleep=sleep, jitter=lambda: 1.0), waits


async def test_success_records_tokens_cost_and_asks_for_json(gateway):
    client, _ = _client(gateway)
    out = await client.complete("ok", "system text", "user text")
    assert out.outcome == "ok" and out.text and parse_reply(out.text).decisions["BTC"].signal == "hold"
    (call,) = out.calls
    assert (call.attempt, call.model, call.provider_model, call.ts_ms) == (1, "ok", "fake-ok", T0)
    assert (call.prompt_tokens, call.completion_tokens) == (120, 40)
    assert call.cost_usd == pytest.approx((120 * 1.0 + 40 * 4.0) / 1e6) == cost_usd(client.model("ok"), 120, 40)
    body = gateway.requests[0]
    assert body["response_format"] == {"type": "json_object"} and body["max_tokens"] == 256
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    await client.close()


async def test_429_and_500_are_retried_with_backoff_then_succeed(gateway):
    client, waits = _client(gateway)
    gateway.push("429", "500", "ok")
    out = await client.complete("ok", "s", "u")
    assert [c.outcome for c in out.calls] == ["rate_limited", "server_error", "ok"]
    assert [c.attempt for c in out.calls] == [1, 2, 3]
    assert waits == [0.0, 0.002]  # Retry-After: 0 from the 429, then backoff x2 (jitter 1.0 -> full)
    assert "HTTP 429" in out.calls[0].error and "HTTP 500" in out.calls[1].error
    await client.close()


async def test_retries_give_up_after_max_retries(gateway):
    client, waits = _client(gateway, max_retries=1)
    out = await client.complete("500", "s", "u")
    assert [c.outcome for c in out.calls] == ["server_error", "server_error"] and out.text is None
    assert len(waits) == 1
    await client.close()


async def test_slow_gateway_times_out_and_is_retried(gateway):
    # the retry's answer must arrive within the timeout too: 1 s leaves room for a loaded machine (0.2 s
    # was missed once while three test suites shared the two cores)
    client, _ = _client(gateway, timeout=1.0, max_retries=1)
    gateway.push({"kind": "slow", "delay": 10.0}, "ok")
    out = await client.complete("ok", "s", "u")
    assert [c.outcome for c in out.calls] == ["timeout", "ok"]
    assert "no answer within 1s" in out.calls[0].error
    await client.close()


async def test_gateway_down_is_a_connection_error_never_a_crash():
    client = LLMClient(_config("http://127.0.0.1:9/v1", max_retries=1, timeout=0.5), FixedClock(T0),
                       sleep=lambda s: _noop())
    out = await client.complete("ok", "s", "u")
    assert [c.outcome for c in out.calls] == ["connection_error", "connection_error"] and out.text is None
    assert all("sk-test-secret" not in (c.error or "") for c in out.calls)
    await client.close()


async def _noop() -> None:
    return None


async def test_structured_output_refused_is_asked_again_without_it(gateway):
    client, _ = _client(gateway)
    out = await client.complete("no_json_mode", "s", "u")
    assert [c.outcome for c in out.calls] == ["refused", "ok"]
    assert "response_format" in gateway.requests[0] and "response_format" not in gateway.requests[1]
    again = await client.complete("no_json_mode", "s", "u")  # remembered for the process
    assert [c.outcome for c in again.calls] == ["ok"] and "response_format" not in gateway.requests[2]
    await client.close()


async def test_truncated_reply_is_recorded_and_fails_the_contract(gateway):
    client, _ = _client(gateway)
    out = await client.complete("truncated", "s", "u")
    assert out.outcome == "truncated" and "max_tokens (256)" in out.error
    with pytest.raises(ContractError, match="cut off or malformed"):
        parse_reply(out.text)
    await client.close()


async def test_malformed_reply_fails_the_contract(gateway):
    client, _ = _client(gateway)
    out = await client.complete("malformed", "s", "u")
    assert out.outcome == "ok"
    with pytest.raises(ContractError, match="cut off or malformed"):
        parse_reply(out.text)
    await client.close()


async def test_reasoning_then_json_and_fenced_json_parse(gateway):
    client, _ = _client(gateway)
    reasoned = parse_reply((await client.complete("reasoning", "s", "u")).text)
    assert reasoned.cot_trace.startswith("BTC is above its EMA20") and reasoned.summary == "holding"
    fenced = parse_reply((await client.complete("fenced", "s", "u")).text)
    assert fenced.cot_trace == "My decision:" and fenced.decisions["BTC"].signal == "hold"
    await client.close()


async def test_separate_reasoning_field_becomes_the_chain_of_thought(gateway):
    client, _ = _client(gateway)
    gateway.push({"kind": "ok", "reasoning_content": "thinking about BTC"})
    out = await client.complete("ok", "s", "u")
    assert out.reasoning == "thinking about BTC"
    assert parse_reply(out.text, out.reasoning).cot_trace == "thinking about BTC"
    await client.close()


def test_unavailable_models_are_named():
    client = LLMClient(_config("http://127.0.0.1:9/v1", api_key=""), FixedClock(T0))
    assert "no API key" in client.unavailable_reason("ok") and "NOF0_LLM_API_KEY" in client.unavailable_reason("ok")
    assert "unknown model 'gpt-9'" in client.unavailable_reason("gpt-9")


async def test_complete_refuses_an_unavailable_model_before_any_call():
    client = LLMClient(_config("http://127.0.0.1:9/v1", api_key=""), FixedClock(T0))
    with pytest.raises(ModelUnavailable, match="no API key"):
        await client.complete("ok", "s", "u")
