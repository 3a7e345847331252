"""The Hyperliquid exchange client: L1 signatures against the official SDK, and the whole client against a
local fake venue that verifies every signature by recovering its signer."""

from __future__ import annotations

import logging

import eth_account
import pytest
from hyperliquid.utils import signing as sdk

from nof0.config import ExchangeProvider
from nof0.engine.exchange.hyperliquid.client import HyperliquidExchange, venue_cloid
from nof0.engine.exchange.hyperliquid.signing import Signer, float_to_wire, recover_l1_signer, sign_l1_action
from nof0.engine.exchange.provider import ExchangeError, OrderRequest, Trigger
from nof0.ingest.service import IngestService
from nof0.kernel.clock import FixedClock
from nof0.kernel.events import ModelEvent, SymbolEvent
from tests.fakes.hyperliquid_exchange import FakeHyperliquid

# throwaway keys made for these tests; they hold nothing anywhere
AGENT_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
OTHER_KEY = "0x" + "5d" * 32
MAIN = "0x1111111111111111111111111111111111111111"
VAULT = "0x2222222222222222222222222222222222222222"
NONCE = 1_761_452_335_744

ACTIONS = [
    {"type": "order", "orders": [{"a": 0, "b": True, "p": "111400", "s": "0.001", "r": False,
                                  "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"},
    {"type": "order", "orders": [{"a": 1, "b": False, "p": "3755.3", "s": "0.0335", "r": True,
                                  "t": {"limit": {"tif": "Ioc"}}, "c": "0x00000000000000000000000000000007"}],
     "grouping": "na"},
    {"type": "order", "orders": [{"a": 2, "b": False, "p": "180", "s": "1.5", "r": True,
                                  "t": {"trigger": {"isMarket": True, "triggerPx": "185.5", "tpsl": "sl"}}}],
     "grouping": "na"},
    {"type": "cancel", "cancels": [{"a": 0, "o": 91490942}]},
    {"type": "updateLeverage", "asset": 1, "isCross": False, "leverage": 10},
]


@pytest.mark.parametrize("action", ACTIONS, ids=["limit", "ioc-cloid", "trigger", "cancel", "leverage"])
@pytest.mark.parametrize("mainnet", [True, False], ids=["mainnet", "testnet"])
@pytest.mark.parametrize("vault", [None, VAULT], ids=["own", "vault"])
def test_signatures_match_the_official_sdk(action, mainnet, vault):
    ours = sign_l1_action(Signer(AGENT_KEY), action, vault, NONCE, mainnet=mainnet)
    theirs = sdk.sign_l1_action(eth_account.Account.from_key(AGENT_KEY), action, vault, NONCE, None, mainnet)
    assert ours == theirs
    assert recover_l1_signer(action, ours, vault, NONCE, mainnet=mainnet) == Signer(AGENT_KEY).address
    # and the signature binds the nonce, the network and the vault
    assert sign_l1_action(Signer(AGENT_KEY), action, vault, NONCE + 1, mainnet=mainnet) != ours
    assert sign_l1_action(Signer(AGENT_KEY), action, vault, NONCE, mainnet=not mainnet) != ours


@pytest.mark.parametrize("x", [0.001, 111400.0, 3755.3, 1e-8, 12.5, 100.0])
def test_numbers_go_on_the_wire_like_the_sdk_writes_them(x):
    assert float_to_wire(x) == sdk.float_to_wire(x)


def test_a_key_is_never_shown():
    signer = Signer(AGENT_KEY)
    assert AGENT_KEY[2:] not in repr(signer) and AGENT_KEY[2:] not in str(signer)
    with pytest.raises(Exception) as info:
        Signer("0x" + "zz" * 32)
    assert "zz" * 8 not in str(info.value)


def _settings(base_url: str, key: str = AGENT_KEY, **kw) -> ExchangeProvider:
    return ExchangeProvider(type="hyperliquid", base_url=base_url, private_key=key, main_address=MAIN, **kw)


@pytest.fixture
async def venue():
    agent = Signer(AGENT_KEY).address
    async with FakeHyperliquid(agents={agent: MAIN}) as fake:
        yield fake


@pytest.fixture
async def hl(rt, venue):
    rt.clock = FixedClock(NONCE)
    client = HyperliquidExchange(rt, "hyperliquid", _settings(venue.base_url), traders={"t1"})
    await client.start()
    yield client
    await client.close()


async def test_a_market_order_is_a_signed_ioc_limit_past_the_mark(hl, venue):
    result = await hl.place_order("t1", OrderRequest("ETH", "buy", 0.12345, cloid="entry-1"))
    # allMids ETH 3929.85 x 1.05 = 4126.3425 -> 4126.3 (5 significant figures); 0.12345 -> 0.1234 (szDecimals 4)
    (done,) = venue.actions
    wire = done["action"]["orders"][0]
    assert wire == {"a": 1, "b": True, "p": "4126.3", "s": "0.1234", "r": False, "t": {"limit": {"tif": "Ioc"}},
                    "c": venue_cloid("entry-1")}
    assert done["signer"] == Signer(AGENT_KEY).address.lower() and done["nonce"] == NONCE
    assert (result.status, result.filled_size, result.avg_price) == ("filled", 0.1234, 4126.3) and result.oid


async def test_limit_orders_rest_and_cancel_and_triggers_carry_their_price(hl, venue):
    resting = await hl.place_order("t1", OrderRequest("BTC", "buy", 0.001, "limit", price=105_000.4, tif="Gtc"))
    assert resting.status == "resting"
    assert any(o.oid == resting.oid and o.price == 105_000.0 for o in await hl.open_orders("t1"))
    assert await hl.cancel("t1", "BTC", resting.oid) is True
    assert await hl.cancel("t1", "BTC", resting.oid) is False  # the venue: never placed, canceled or filled
    sl = await hl.place_order("t1", OrderRequest("SOL", "sell", 1.5, reduce_only=True, trigger=Trigger("sl", 185.5)))
    assert sl.status == "resting"
    trigger = venue.actions[-1]["action"]["orders"][0]
    # a market trigger's limit is the trigger price moved by the slippage: 185.5 x 0.95 = 176.225 -> 176.22
    assert trigger["t"] == {"trigger": {"isMarket": True, "triggerPx": "185.5", "tpsl": "sl"}}
    assert (trigger["p"], trigger["r"]) == ("176.22", True)
    nonces = [a["nonce"] for a in venue.actions]
    assert nonces == sorted(set(nonces))  # one clock millisecond, still one nonce per action


async def test_leverage_is_updated_before_an_order_that_names_it(hl, venue):
    await hl.place_order("t1", OrderRequest("ETH", "sell", 0.01, "limit", price=4200.0, tif="Gtc", leverage=7))
    assert [a["action"]["type"] for a in venue.actions] == ["updateLeverage", "order"]
    assert venue.leverage[(MAIN, 1)] == (7, False)
    with pytest.raises(ExchangeError, match="whole number"):
        await hl.update_leverage("t1", "ETH", 2.5)


async def test_venue_refusals_carry_the_venue_s_words(hl, venue, rt):
    small = await hl.place_order("t1", OrderRequest("DOGE", "buy", 10.0, "limit", price=0.19, tif="Gtc"))
    assert (small.status, small.error) == ("rejected", "Order must have minimum value of $10.")
    stranger = HyperliquidExchange(rt, "hyperliquid", _settings(venue.base_url, key=OTHER_KEY), traders={"t1"})
    await stranger.start()
    with pytest.raises(ExchangeError, match="does not exist") as info:
        await stranger.place_order("t1", OrderRequest("ETH", "buy", 0.1))
    assert OTHER_KEY[2:] not in str(info.value)
    await stranger.close()
    with pytest.raises(ExchangeError, match="no perp 'NOPE'"):
        await hl.place_order("t1", OrderRequest("NOPE", "buy", 1.0))
    with pytest.raises(ExchangeError, match="not bound to this exchange"):
        await hl.account("someone_else")


async def test_account_positions_orders_and_fills_from_the_recorded_responses(hl, rt):
    acct = await hl.account("t1")
    assert (acct.equity_usd, acct.available_usd, acct.margin_used_usd) == (13109.482328, 12993.197002, 116.285326)
    eth, btc = acct.positions
    assert (eth.symbol, eth.side, eth.size, eth.entry_price, eth.leverage, eth.margin_usd) == (
        "ETH", "long", 0.0335, 2986.3, 20.0, 4.967826)
    assert eth.liquidation_price == 2866.26936529 and eth.mark_price == pytest.approx(100.02765 / 0.0335)
    assert (btc.side, btc.size, btc.liquidation_price) == ("short", 0.01, None)
    orders = await hl.open_orders("t1")
    assert [(o.oid, o.side, o.cloid) for o in orders] == [
        (91490942, "sell", None), (91490950, "buy", "0x00000000000000000000000000000001")]
    fills = await hl.fills("t1")
    assert [(f.symbol, f.side, f.price, f.size, f.fee_usd, f.tid) for f in fills] == [
        ("ETH", "buy", 2986.3, 0.0335, 0.045018, 118906512037719),
        ("BTC", "sell", 111500.0, 0.01, 0.16725, 118906512037801)]
    # the venue's fills go through the same fill pipeline as the sim's
    report = await IngestService(rt).ingest([ModelEvent(id="t1"), SymbolEvent(symbol="ETH"), SymbolEvent(symbol="BTC"),
                                             *fills])
    assert report.rejected == 0
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT symbol, side, quantity FROM positions WHERE model_id = 't1' ORDER BY symbol")
        assert await cur.fetchall() == [{"symbol": "BTC", "side": "short", "quantity": 0.01},
                                        {"symbol": "ETH", "side": "long", "quantity": 0.0335}]


async def test_the_private_key_never_reaches_logs_or_errors(rt, venue, caplog):
    caplog.set_level(logging.DEBUG)
    client = HyperliquidExchange(rt, "hyperliquid", _settings(venue.base_url), traders={"t1"})
    await client.start()
    await client.place_order("t1", OrderRequest("ETH", "buy", 0.1))
    assert AGENT_KEY[2:] not in repr(client) and AGENT_KEY[2:] not in caplog.text
    await client.close()
    with pytest.raises(ExchangeError) as info:
        HyperliquidExchange(rt, "hyperliquid", _settings(venue.base_url, key=AGENT_KEY[:-4]), traders={"t1"})
    assert AGENT_KEY[2:-4] not in str(info.value)


async def test_an_unreachable_venue_is_an_exchange_error(rt):
    client = HyperliquidExchange(rt, "hyperliquid", _settings("http://127.0.0.1:9", timeout=1), traders={"t1"})
    with pytest.raises(ExchangeError, match="unreachable"):
        await client.start()
    await client.close()


def test_venue_cloid_keeps_a_16_byte_hex_id_and_hashes_anything_else():
    hexid = "0x" + "Ab" * 16
    assert venue_cloid(hexid) == hexid.lower()
    for other in ("entry-1", hexid + "\n", hexid[:-1]):  # a trailing newline is not the same id
        got = venue_cloid(other)
        assert got != other.lower() and len(got) == 34 and got == venue_cloid(other)
