"""A local OpenAI-compatible gateway for the tests: ``POST /v1/chat/completions`` on 127.0.0.1.

Each request takes the next step of ``script`` (FIFO), or, when the script is empty, the step named
by the request's ``model`` (``fake-ok``, ``fake-slow``, ...). A step is a dict: ``kind`` (ok, slow,
429, 500, malformed, truncated, reasoning, fenced, no_json_mode), optional ``content`` (the reply
text), ``delay`` (seconds, for slow), ``usage`` ((prompt, completion) tokens). Every request body is
kept in ``requests`` for the test to inspect.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DEFAULT_DECISION = {"cot_trace_summary": "holding", "decisions": {"BTC": {"signal": "hold", "confidence": 0.5}}}


def decision_text(obj: dict | None = None) -> str:
    return json.dumps(obj or DEFAULT_DECISION)


class FakeGateway:
    def __init__(self) -> None:
        self.script: deque[dict[str, Any]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""
        self._server: uvicorn.Server | None = None

    def push(self, *steps: dict[str, Any] | str) -> None:
        for step in steps:
            self.script.append({"kind": step} if isinstance(step, str) else step)

    async def _completions(self, request: Request):
        body = await request.json()
        self.requests.append(body)
        step = self.script.popleft() if self.script else {"kind": str(body.get("model", "")).removeprefix("fake-")}
        kind = step.get("kind", "ok")
        content = step.get("content")
        finish = "stop"
        if kind == "slow":
            await asyncio.sleep(step.get("delay", 5.0))
        elif kind == "429":
            return JSONResponse({"error": {"message": "rate limited", "type": "rate_limit"}}, 429,
                                headers={"retry-after": str(step.get("retry_after", 0))})
        elif kind == "500":
            return JSONResponse({"error": {"message": "upstream exploded"}}, 500)
        elif kind == "no_json_mode" and "response_format" in body:
            return JSONResponse({"error": {"message": "response_format is not supported by this model"}}, 400)
        elif kind == "malformed":
            content = content or 'I like BTC here. {"decisions": {"BTC": {"signal": "buy_to_enter", "quantity": 0.1,,}}'
        elif kind == "truncated":
            content = content or '{"cot_trace_summary": "long BTC", "decisions": {"BTC": {"signal": "buy_to'
            finish = "length"
        elif kind == "reasoning":
            content = "BTC is above its EMA20 and momentum is positive, so I will hold.\n" + (content or decision_text())
        elif kind == "fenced":
            content = "My decision:\n```json\n" + (content or decision_text()) + "\n```\nGood luck."
        prompt, completion = step.get("usage", (120, 40))
        return JSONResponse({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 1761452335,
            "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content if content is not None else decision_text(),
                                     **({"reasoning_content": step["reasoning_content"]}
                                        if "reasoning_content" in step else {})}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        })

    @asynccontextmanager
    async def running(self):
        app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.005)  # uvicorn exposes no started event; this is its own startup, not state
        try:
            yield self
        finally:
            server.should_exit = True
            await task
            sock.close()
