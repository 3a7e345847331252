"""A local fake of Hyperliquid's ``/info`` and ``/exchange`` for the exchange client's tests.

HTTP on 127.0.0.1 at an ephemeral port, started and stopped by the test (``async with FakeHyperliquid(...)``).
``/info`` answers from the recorded responses under ``tests/fixtures/hyperliquid/`` (plus what the
actions did). ``/exchange`` verifies every action like the venue: it recovers the signer with the
official SDK's ``recover_agent_or_user_from_l1_action`` (an implementation independent of nof0's) and
refuses a signer that is not an API wallet of a known account, a reused nonce, or a malformed action;
orders below 10 USD are refused with the venue's message; IOC orders fill at their limit price, GTC/ALO
orders and triggers rest; cancels remove resting orders.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import uvicorn
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hyperliquid"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class FakeHyperliquid:
    def __init__(self, *, agents: dict[str, str], mainnet: bool = True) -> None:
        """``agents``: API wallet address -> the account (main address) it trades for."""
        self.agents = {a.lower(): u.lower() for a, u in agents.items()}
        self.mainnet = mainnet
        self.meta = fixture("meta.json")
        self.mids = fixture("all_mids.json")
        self.state = fixture("clearinghouse_state.json")
        self.fills = fixture("user_fills.json")
        self.orders: list[dict[str, Any]] = fixture("open_orders.json")
        self.actions: list[dict[str, Any]] = []  # accepted actions: {"action", "nonce", "signer", "user"}
        self.leverage: dict[tuple[str, int], tuple[int, bool]] = {}
        self._nonces: set[tuple[str, int]] = set()
        self._next_oid = 100_000_000
        self._server: uvicorn.Server | None = None
        self._task: Any = None
        self.base_url = ""

    # ------------------------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> "FakeHyperliquid":
        import asyncio

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # listening before uvicorn serves: a client's first request waits in the backlog
        port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/info", self._info, methods=["POST"]),
                                Route("/exchange", self._exchange, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.should_exit = True
        await self._task

    # ------------------------------------------------------------------------------------ /info
    async def _info(self, request: Request) -> JSONResponse:
        body = await request.json()
        kind = body.get("type")
        if kind == "meta":
            return JSONResponse(self.meta)
        if kind == "allMids":
            return JSONResponse(self.mids)
        if kind in ("clearinghouseState", "userFills", "openOrders"):
            user = str(body.get("user", "")).lower()
            known = user in self.agents.values()
            if kind == "clearinghouseState":
                return JSONResponse(self.state if known else _empty_state())
            if kind == "userFills":
                return JSONResponse(self.fills if known else [])
            return JSONResponse(self.orders if known else [])
        return JSONResponse({"error": f"Failed to deserialize the JSON body into the target type: type {kind!r}"},
                            status_code=422)

    # ------------------------------------------------------------------------------------ /exchange
    async def _exchange(self, request: Request) -> JSONResponse:
        body = await request.json()
        try:
            action, nonce, signature = body["action"], int(body["nonce"]), body["signature"]
            vault = body.get("vaultAddress")
            signer = recover_agent_or_user_from_l1_action(action, signature, vault, nonce, None, self.mainnet).lower()
        except Exception as exc:  # noqa: BLE001 - the venue answers a bad body with a 422
            return JSONResponse({"error": f"Failed to deserialize the JSON body: {exc}"}, status_code=422)
        user = self.agents.get(signer)
        if user is None:
            return JSONResponse({"status": "err", "response": f"User or API Wallet {signer} does not exist."})
        if (signer, nonce) in self._nonces:
            return JSONResponse({"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"})
        self._nonces.add((signer, nonce))
        self.actions.append({"action": action, "nonce": nonce, "signer": signer, "user": vault or user})
        kind = action.get("type")
        if kind == "order":
            return JSONResponse(_ok("order", [self._order(o) for o in action["orders"]]))
        if kind == "cancel":
            return JSONResponse(_ok("cancel", [self._cancel(c) for c in action["cancels"]]))
        if kind == "updateLeverage":
            self.leverage[(user, int(action["asset"]))] = (int(action["leverage"]), bool(action["isCross"]))
            return JSONResponse({"status": "ok", "response": {"type": "default"}})
        return JSONResponse({"status": "err", "response": f"unknown action type {kind!r}"})

    def _order(self, o: dict[str, Any]) -> dict[str, Any]:
        universe = self.meta["universe"]
        if not 0 <= o["a"] < len(universe):
            return {"error": "Invalid asset."}
        coin = universe[o["a"]]["name"]
        px, sz = float(o["p"]), float(o["s"])
        if px * sz < 10 and not o["r"]:
            return {"error": "Order must have minimum value of $10."}
        self._next_oid += 1
        oid = self._next_oid
        tif = o["t"].get("limit", {}).get("tif")
        if tif == "Ioc":
            return {"filled": {"totalSz": o["s"], "avgPx": o["p"], "oid": oid}}
        self.orders.append({"coin": coin, "limitPx": o["p"], "oid": oid, "side": "B" if o["b"] else "A",
                            "sz": o["s"], "timestamp": 1_708_622_400_000, "origSz": o["s"],
                            **({"cloid": o["c"]} if "c" in o else {})})
        return {"resting": {"oid": oid}}

    def _cancel(self, c: dict[str, Any]) -> Any:
        for i, o in enumerate(self.orders):
            if o["oid"] == c["o"]:
                del self.orders[i]
                return "success"
        return {"error": "Order was never placed, already canceled, or filled."}


def _ok(kind: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _empty_state() -> dict[str, Any]:
    zero = {"accountValue": "0.0", "totalMarginUsed": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0"}
    return {"assetPositions": [], "crossMaintenanceMarginUsed": "0.0", "crossMarginSummary": zero,
            "marginSummary": zero, "time": 1_708_622_398_623, "withdrawable": "0.0"}
