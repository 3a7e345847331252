"""Chat completions from an OpenAI-compatible gateway (etc/llm.yaml), one call per decision cycle.

Each attempt is recorded (model, latency, prompt/completion tokens, cost, outcome) as a
:class:`CallRecord`; the executor writes them with the cycle's journal through ``IngestService``
(``llm_call`` events), so budgets and audits read them from Postgres.

Retries: 429, 5xx, timeouts and connection errors are retried up to ``max_retries`` times, waiting
``retry_backoff`` x 2^n with jitter (or the gateway's ``Retry-After``), at most ``retry_backoff_max``.
Structured output (``response_format: json_object``) is asked for where the model's entry allows it;
a gateway answering 400 about it is asked again without it, and not asked again in this process.
The API key never appears in a record, a log line or an error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import openai

from nof0.config import LLMConfig, LLMModel
from nof0.kernel.clock import Clock
from nof0.obs.logging import get_logger

__all__ = ["LLMClient", "CallRecord", "Completion", "ModelUnavailable"]

log = get_logger("nof0.engine.llm")


class ModelUnavailable(RuntimeError):
    """The model cannot be called now (unknown, no API key, budget spent): skip the trader's cycle."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    attempt: int
    model: str
    provider_model: str
    ts_ms: int
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    outcome: str
    error: str | None = None


@dataclass(slots=True)
class Completion:
    """The reply of the last attempt (``text`` None when no attempt got one) and every attempt's record."""

    text: str | None
    reasoning: str | None = None  # a gateway's separate reasoning field (e.g. reasoning_content)
    finish_reason: str | None = None
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.calls[-1].outcome if self.calls else "error"

    @property
    def error(self) -> str | None:
        return self.calls[-1].error if self.calls else "no call was made"


_RETRYABLE = ("timeout", "rate_limited", "server_error", "connection_error")


def cost_usd(model: LLMModel, prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * model.input_usd_per_mtok + completion_tokens * model.output_usd_per_mtok) / 1e6


class LLMClient:
    def __init__(self, config: LLMConfig, clock: Clock, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self.clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._no_structured: set[str] = set()  # models whose gateway refused response_format

    # ------------------------------------------------------------------ availability
    def model(self, name: str) -> LLMModel:
        entry = self.config.models.get(name)
        if entry is None:
            raise ModelUnavailable(f"unknown model {name!r} (llm.yaml models: {', '.join(sorted(self.config.models))})")
        return entry

    def unavailable_reason(self, name: str) -> str | None:
        """Why ``name`` cannot be called (None when it can): unknown model, no API key."""
        try:
            entry = self.model(name)
        except ModelUnavailable as exc:
            return str(exc)
        if not (entry.api_key or self.config.api_key):
            return f"model {name!r} has no API key (set NOF0_LLM_API_KEY, or api_key in llm.yaml)"
        return None

    def _client(self, entry: LLMModel) -> openai.AsyncOpenAI:
        base_url = entry.base_url or self.config.base_url
        api_key = entry.api_key or self.config.api_key
        key = (base_url, api_key)
        client = self._clients.get(key)
        if client is None:
            # our own retries (recorded per attempt, clock-aware backoff), never the library's
            client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=float(self.config.timeout),
                                        max_retries=0)
            self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    # ------------------------------------------------------------------ calls
    async def complete(self, name: str, system: str, user: str) -> Completion:
        """One chat completion, retried as the module docstring says. Raises :class:`ModelUnavailable`
        only before any call is made; every call's outcome is in the returned records."""
        reason = self.unavailable_reason(name)
        if reason:
            raise ModelUnavailable(reason)
        entry = self.model(name)
        client = self._client(entry)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        out = Completion(text=None)
        attempts = self.config.max_retries + 1
        attempt = 0
        while attempt < attempts:
            attempt += 1
            structured = entry.structured_output and name not in self._no_structured
            ts_ms = self.clock.now_ms()
            started = time.perf_counter()
            kwargs = {"response_format": {"type": "json_object"}} if structured else {}
            wait: float | None = None
            try:
                resp = await client.chat.completions.create(
                    model=entry.provider_model, messages=messages, temperature=entry.temperature,
                    max_tokens=entry.max_tokens, timeout=float(self.config.timeout), **kwargs)
            except openai.APITimeoutError:
                record = self._record(attempt, name, entry, ts_ms, started, "timeout",
                                      f"no answer within {float(self.config.timeout):g}s")
            except openai.APIConnectionError as exc:
                record = self._record(attempt, name, entry, ts_ms, started, "connection_error", _clip(str(exc)))
            except openai.APIStatusError as exc:
                status = exc.status_code
                detail = f"HTTP {status}: {_clip(_message(exc))}"
                if status == 429:
                    record = self._record(attempt, name, entry, ts_ms, started, "rate_limited", detail)
                    wait = _retry_after(exc)
                elif status >= 500:
                    record = self._record(attempt, name, entry, ts_ms, started, "server_error", detail)
                else:
                    record = self._record(attempt, name, entry, ts_ms, started, "refused", detail)
                    if structured and status == 400 and "response_format" in _message(exc):
                        # the gateway does not do structured output: ask again without it, at once
                        self._no_structured.add(name)
                        out.calls.append(record)
                        attempts += 1  # this attempt does not count against the retries
                        continue
            except openai.OpenAIError as exc:  # a response the library could not read, and the like
                record = self._record(attempt, name, entry, ts_ms, started, "error", _clip(str(exc)))
            else:
                out.calls.append(self._reply(out, resp, attempt, name, entry, ts_ms, started))
                return out
            out.calls.append(record)
            if record.outcome not in _RETRYABLE or attempt >= attempts:
                break
            delay = self._backoff(attempt) if wait is None else min(wait, float(self.config.retry_backoff_max))
            log.info("llm call failed, retrying", model=name, attempt=attempt, outcome=record.outcome,
                     retry_in_s=round(delay, 3))
            await self._sleep(delay)
        return out

    def _reply(self, out: Completion, resp, attempt: int, name: str, entry: LLMModel, ts_ms: int,
               started: float) -> CallRecord:
        choice = resp.choices[0] if resp.choices else None
        message = choice.message if choice is not None else None
        out.text = (message.content if message is not None else None) or ""
        extra = getattr(message, "model_extra", None) or {}
        out.reasoning = extra.get("reasoning_content") or extra.get("reasoning") or None
        out.finish_reason = choice.finish_reason if choice is not None else None
        usage = resp.usage
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        outcome, error = "ok", None
        if choice is None:
            outcome, error = "error", "the reply holds no choice"
        elif out.finish_reason == "length":
            outcome, error = "truncated", f"the reply hit max_tokens ({entry.max_tokens})"
        return CallRecord(attempt, name, entry.provider_model, ts_ms, _ms_since(started), prompt, completion,
                          cost_usd(entry, prompt, completion), outcome, error)

    def _record(self, attempt: int, name: str, entry: LLMModel, ts_ms: int, started: float, outcome: str,
                error: str) -> CallRecord:
        return CallRecord(attempt, name, entry.provider_model, ts_ms, _ms_since(started), 0, 0, 0.0, outcome, error)

    def _backoff(self, attempt: int) -> float:
        base = float(self.config.retry_backoff) * 2 ** (attempt - 1)
        return min(float(self.config.retry_backoff_max), base * (0.5 + self._jitter() / 2))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        return str(err)
    return str(exc.message or "")


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (ValueError, AttributeError):
        return None


def _clip(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
