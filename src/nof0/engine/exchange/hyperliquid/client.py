"""The Hyperliquid exchange client (engine.md "Exchange providers / hyperliquid").

Actions (``order``, ``cancel``, ``updateLeverage``) are ``POST {base_url}/exchange`` with an L1 signature
(:mod:`.signing`) made by the provider's API wallet for ``main_address`` (or ``vault_address``); the
nonce is the injected clock's milliseconds, bumped so two actions never share one. Reads are ``POST
{base_url}/info``: ``meta`` (asset indexes and size decimals, at start), ``clearinghouseState``
(account and positions), ``openOrders``, ``userFills`` and, for a market order without a feed,
``allMids``.

A market order is what the venue calls one: an IOC limit at the mark moved by
``market_slippage`` (5 % by default, the official SDK's), rounded like every price to 5 significant
figures and ``6 - szDecimals`` decimals; sizes are rounded down to ``szDecimals``. An order the venue
refuses comes back as a rejected :class:`OrderResult` carrying the venue's words; a refused request
(``{"status": "err"}``, an HTTP error, an unreachable venue) raises :class:`ExchangeError` with the
venue's message. One provider entry is one account: a trader not bound to it in manager.yaml is
refused. The private key is only ever held by :class:`~.signing.Signer`, which never prints it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx

from nof0.config import ExchangeProvider
from nof0.engine.exchange.hyperliquid.signing import Signer, SigningError, float_to_wire, sign_l1_action
from nof0.engine.exchange.provider import (
    AccountState, ExchangeError, OpenOrder, OrderRequest, OrderResult, PositionState,
)
from nof0.engine.exchange.sim.rules import round_price, round_size
from nof0.engine.market.state import MarketState
from nof0.kernel.events import Fill
from nof0.runtime import Runtime

__all__ = ["HyperliquidExchange", "MAINNET_URL", "TESTNET_URL"]

MAINNET_URL = "https://api.hyperliquid.xyz"
TESTNET_URL = "https://api.hyperliquid-testnet.xyz"
_CLOID = re.compile(r"0x[0-9a-fA-F]{32}")


class HyperliquidExchange:
    def __init__(self, rt: Runtime, name: str, settings: ExchangeProvider,
                 markets: dict[str, MarketState] | None = None, *, traders: set[str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.rt, self.name, self.settings = rt, name, settings
        self.markets = markets or {}
        self.base_url = (settings.base_url or (TESTNET_URL if settings.testnet else MAINNET_URL)).rstrip("/")
        self.mainnet = not settings.testnet
        self.vault = settings.vault_address or None
        self._signer: Signer | None = None
        if settings.private_key:
            try:
                self._signer = Signer(settings.private_key)
            except SigningError as exc:
                raise ExchangeError(f"hyperliquid {name}: private_key: {exc}") from None
        self.user = (settings.vault_address or settings.main_address
                     or (self._signer.address if self._signer else "")).lower()
        self.traders = traders if traders is not None else {
            t.id for t in rt.config.manager.traders if t.exchange_provider == name}
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._assets: dict[str, tuple[int, int]] = {}  # symbol -> (asset index, szDecimals)
        self._last_nonce = 0

    def __repr__(self) -> str:
        return f"HyperliquidExchange(name={self.name!r}, base_url={self.base_url!r}, user={self.user!r})"

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.base_url, timeout=float(self.settings.timeout),
                                           transport=self._transport, headers={"Content-Type": "application/json"})
        meta = await self._info({"type": "meta"})
        try:
            self._assets = {u["name"]: (i, int(u["szDecimals"])) for i, u in enumerate(meta["universe"])}
        except (KeyError, TypeError, ValueError) as exc:
            raise ExchangeError(f"hyperliquid {self.name}: malformed meta response ({exc!r})") from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # ------------------------------------------------------------------------------------ actions
    async def place_order(self, trader_id: str, order: OrderRequest) -> OrderResult:
        self._bound(trader_id)
        index, szd = await self._asset(order.symbol)
        if order.leverage is not None:
            await self.update_leverage(trader_id, order.symbol, order.leverage)
        size = round_size(order.size, szd)
        if size <= 0:
            return OrderResult(status="rejected", error=f"size {order.size!r} rounds to 0 at {szd} size decimals")
        is_buy = order.side == "buy"
        if order.trigger is not None:
            t = order.trigger
            trigger_px = round_price(t.trigger_px, szd)
            limit = t.limit_px or order.price
            px = round_price(limit, szd) if (not t.is_market and limit) else self._slipped(trigger_px, is_buy, szd)
            kind: dict[str, Any] = {"trigger": {"isMarket": t.is_market, "triggerPx": float_to_wire(trigger_px),
                                                "tpsl": t.kind}}
        elif order.order_type == "limit":
            if order.price is None:
                return OrderResult(status="rejected", error="a limit order needs a price")
            px = round_price(order.price, szd)
            kind = {"limit": {"tif": order.tif}}
        else:
            px = self._slipped(await self._mark(order.symbol), is_buy, szd)
            kind = {"limit": {"tif": "Ioc"}}
        wire: dict[str, Any] = {"a": index, "b": is_buy, "p": float_to_wire(px), "s": float_to_wire(size),
                                "r": order.reduce_only, "t": kind}
        if order.cloid is not None:
            wire["c"] = venue_cloid(order.cloid)
        response = await self._action({"type": "order", "orders": [wire], "grouping": "na"})
        status = _first_status(response, self.name)
        if "filled" in status:
            f = status["filled"]
            return OrderResult(status="filled", oid=int(f["oid"]), filled_size=float(f["totalSz"]),
                               avg_price=float(f["avgPx"]))
        if "resting" in status:
            return OrderResult(status="resting", oid=int(status["resting"]["oid"]))
        if "error" in status:
            return OrderResult(status="rejected", error=str(status["error"]))
        raise ExchangeError(f"hyperliquid {self.name}: unexpected order status {status!r}")

    async def cancel(self, trader_id: str, symbol: str, oid: int) -> bool:
        self._bound(trader_id)
        index, _ = await self._asset(symbol)
        response = await self._action({"type": "cancel", "cancels": [{"a": index, "o": int(oid)}]})
        status = _first_status(response, self.name)
        return status == "success"

    async def update_leverage(self, trader_id: str, symbol: str, leverage: float, *, is_cross: bool = False) -> None:
        self._bound(trader_id)
        index, _ = await self._asset(symbol)
        if leverage != int(leverage) or leverage < 1:
            raise ExchangeError(f"hyperliquid {self.name}: leverage must be a whole number of at least 1, got {leverage!r}")
        await self._action({"type": "updateLeverage", "asset": index, "isCross": is_cross, "leverage": int(leverage)})

    async def close_position(self, trader_id: str, symbol: str) -> OrderResult:
        for pos in await self.positions(trader_id):
            if pos.symbol == symbol:
                side = "sell" if pos.side == "long" else "buy"
                return await self.place_order(trader_id, OrderRequest(symbol, side, pos.size, reduce_only=True))
        return OrderResult(status="rejected", error=f"no open {symbol} position to close")

    # ------------------------------------------------------------------------------------ reads
    async def account(self, trader_id: str) -> AccountState:
        self._bound(trader_id)
        state = await self._info({"type": "clearinghouseState", "user": self.user})
        try:
            summary = state["marginSummary"]
            positions = [_position(p["position"]) for p in state.get("assetPositions", [])
                         if float(p["position"]["szi"]) != 0]
            return AccountState(equity_usd=float(summary["accountValue"]), available_usd=float(state["withdrawable"]),
                                margin_used_usd=float(summary["totalMarginUsed"]), positions=positions)
        except (KeyError, TypeError, ValueError) as exc:
            raise ExchangeError(f"hyperliquid {self.name}: malformed clearinghouseState ({exc!r})") from None

    async def positions(self, trader_id: str) -> list[PositionState]:
        return (await self.account(trader_id)).positions

    async def open_orders(self, trader_id: str) -> list[OpenOrder]:
        self._bound(trader_id)
        rows = await self._info({"type": "openOrders", "user": self.user})
        try:
            return [OpenOrder(
                oid=int(o["oid"]), symbol=o["coin"], side="buy" if o["side"] == "B" else "sell", size=float(o["sz"]),
                price=float(o["limitPx"]), order_type=_order_type(o), reduce_only=bool(o.get("reduceOnly", False)),
                ts_ms=int(o["timestamp"]), trigger_px=float(o["triggerPx"]) if o.get("isTrigger") else None,
                cloid=o.get("cloid"),
            ) for o in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise ExchangeError(f"hyperliquid {self.name}: malformed openOrders ({exc!r})") from None

    async def fills(self, trader_id: str) -> list[Fill]:
        """The account's recent fills (``userFills``) as ingest events of the trader, for the fill pipeline."""
        self._bound(trader_id)
        rows = await self._info({"type": "userFills", "user": self.user})
        try:
            return [Fill(model_id=trader_id, symbol=f["coin"], side="buy" if f["side"] == "B" else "sell",
                         price=float(f["px"]), size=float(f["sz"]), fee_usd=float(f.get("fee", 0.0)),
                         ts_ms=int(f["time"]), oid=int(f["oid"]), tid=int(f["tid"]), crossed=f.get("crossed"),
                         liquidation=f.get("liquidation")) for f in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise ExchangeError(f"hyperliquid {self.name}: malformed userFills ({exc!r})") from None

    # ------------------------------------------------------------------------------------ internals
    def _bound(self, trader_id: str) -> None:
        if trader_id not in self.traders:
            raise ExchangeError(f"hyperliquid {self.name}: trader {trader_id!r} is not bound to this exchange"
                                " (its exchange_provider in manager.yaml)")

    async def _asset(self, symbol: str) -> tuple[int, int]:
        if not self._assets:
            await self.start()
        try:
            return self._assets[symbol]
        except KeyError:
            raise ExchangeError(f"hyperliquid {self.name}: the venue lists no perp {symbol!r}") from None

    async def _mark(self, symbol: str) -> float:
        for state in self.markets.values():
            if (mark := state.mark(symbol)) is not None:
                return mark
        mids = await self._info({"type": "allMids"})
        try:
            return float(mids[symbol])
        except (KeyError, TypeError, ValueError):
            raise ExchangeError(f"hyperliquid {self.name}: no mid price for {symbol!r}") from None

    def _slipped(self, px: float, is_buy: bool, szd: int) -> float:
        move = self.settings.market_slippage
        return round_price(px * (1 + move) if is_buy else px * (1 - move), szd)

    def _nonce(self) -> int:
        self._last_nonce = max(self.rt.clock.now_ms(), self._last_nonce + 1)
        return self._last_nonce

    async def _action(self, action: dict[str, Any]) -> dict[str, Any]:
        if self._signer is None:
            raise ExchangeError(f"hyperliquid {self.name}: no private_key configured (set it in the environment,"
                                " e.g. HYPERLIQUID_PRIVATE_KEY)")
        nonce = self._nonce()
        signature = sign_l1_action(self._signer, action, self.vault, nonce, mainnet=self.mainnet)
        body = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": self.vault}
        response = await self._post("/exchange", body)
        if not isinstance(response, dict) or response.get("status") != "ok":
            message = response.get("response") if isinstance(response, dict) else response
            raise ExchangeError(f"hyperliquid {self.name}: {message}")
        return response

    async def _info(self, body: dict[str, Any]) -> Any:
        return await self._post("/info", body)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.base_url, timeout=float(self.settings.timeout),
                                           transport=self._transport)
        try:
            response = await self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ExchangeError(f"hyperliquid {self.name}: {path} unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise ExchangeError(f"hyperliquid {self.name}: {path} answered HTTP {response.status_code}:"
                                f" {_venue_message(response)}")
        try:
            return response.json()
        except ValueError:
            raise ExchangeError(f"hyperliquid {self.name}: {path} answered something that is not JSON:"
                                f" {response.text[:200]!r}") from None


def venue_cloid(cloid: str) -> str:
    """Hyperliquid's client order id is 16 bytes of hex; any other id maps to the md5 of its text, so the
    same request always carries the same venue cloid."""
    return cloid.lower() if _CLOID.fullmatch(cloid) else "0x" + hashlib.md5(cloid.encode()).hexdigest()


def _venue_message(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(doc, dict):
        return str(doc.get("msg") or doc.get("response") or doc.get("error") or doc)[:500]
    return str(doc)[:500]


def _first_status(response: dict[str, Any], name: str) -> Any:
    try:
        return response["response"]["data"]["statuses"][0]
    except (KeyError, IndexError, TypeError):
        raise ExchangeError(f"hyperliquid {name}: unexpected response {str(response)[:300]}") from None


def _order_type(o: dict[str, Any]) -> str:
    kind = str(o.get("orderType", "Limit")).lower()
    if "take profit" in kind:
        return "take_profit"
    if "stop" in kind:
        return "stop"
    return "limit"


def _position(p: dict[str, Any]) -> PositionState:
    szi = float(p["szi"])
    size = abs(szi)
    value = float(p.get("positionValue") or 0.0)
    liq = p.get("liquidationPx")
    return PositionState(
        symbol=p["coin"], side="long" if szi > 0 else "short", size=size, entry_price=float(p["entryPx"]),
        leverage=float(p["leverage"]["value"]), margin_usd=float(p["marginUsed"]),
        unrealized_pnl=float(p["unrealizedPnl"]), liquidation_price=float(liq) if liq is not None else None,
        mark_price=value / size if size else None,
    )
