"""Strict parsing of recorded Hyperliquid responses: good entries kept, bad ones skipped with a reason."""

from __future__ import annotations

import json

import pytest

from nof0.engine.market.hyperliquid import parse
from nof0.engine.market.hyperliquid.parse import MalformedResponse
from tests.fakes.hyperliquid_market import FIXTURES, fixture

SIX = {"BTC", "ETH", "SOL", "BNB", "DOGE", "XRP"}


class Skips(list):
    def __call__(self, reason, detail):
        self.append((reason, detail))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_all_mids_kept_to_the_wanted_symbols():
    skips = Skips()
    assert parse.parse_mids(raw("all_mids.json"), SIX, skips) == {
        "BTC": 111317.5, "ETH": 3929.85, "SOL": 193.235, "BNB": 1117.95, "DOGE": 0.195255, "XRP": 2.60815}
    assert skips == []
    frame = parse.decode_frame(raw("ws_all_mids.json"))
    assert frame.channel == "allMids"
    assert parse.parse_mids(frame.data, {"BTC", "HYPE"}, skips, frame_data=True) == {"BTC": 111320.5, "HYPE": 45.0445}
    assert "@142" in parse.parse_mids(raw("all_mids.json"), None, skips)


@pytest.mark.parametrize("bad", ["abc", "", "nan", "inf", "-1.0", "0", "1e13", "1_000", " 5", "0x10", "5\n"])
def test_a_bad_price_is_skipped_and_the_others_kept(bad):
    skips = Skips()
    got = parse.parse_mids(json.dumps({"BTC": bad, "ETH": "3930.5"}), SIX, skips)
    assert got == {"ETH": 3930.5}
    assert [r for r, _ in skips] == ["bad_price"] and "BTC" in skips[0][1]


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"BTC": 111317.5}', b'{"BTC": null}', b"null"])
def test_mids_that_are_not_a_map_of_price_strings_are_malformed(body):
    with pytest.raises(MalformedResponse, match="allMids"):
        parse.parse_mids(body, SIX, Skips())


def test_meta_and_asset_ctxs_recorded_response():
    skips = Skips()
    snap = parse.parse_meta_and_asset_ctxs(raw("meta_and_asset_ctxs.json"), 1761452335744, SIX | {"LINK"}, skips)
    assert snap.ts_ms == 1761452335744 and set(snap.assets) == SIX == set(snap.contexts)
    btc = snap.assets["BTC"]
    assert (btc.sz_decimals, btc.max_leverage, btc.margin_table_id, btc.is_delisted) == (5, 40.0, 56, False)
    ctx = snap.contexts["BTC"]
    assert (ctx.funding, ctx.open_interest, ctx.mark_px, ctx.mid_px, ctx.oracle_px) == (
        0.0000125, 30426.48138, 111524.0, 111523.5, 111489.0)
    assert ctx.impact_pxs == (111521.0, 111524.0) and ctx.day_base_vlm == 27640.01734
    assert skips == [("unknown_symbol", "LINK is not listed in the venue's universe")]
    everything = parse.parse_meta_and_asset_ctxs(raw("meta_and_asset_ctxs.json"), 1, None, skips)
    assert everything.assets["MATIC"].is_delisted and everything.contexts["MATIC"].mid_px is None


def test_one_bad_asset_is_skipped_and_the_others_kept():
    meta, ctxs = fixture("meta_and_asset_ctxs.json")
    meta["universe"][1]["szDecimals"] = "four"  # ETH
    ctxs[3]["markPx"] = None  # SOL
    ctxs[4]["funding"] = "1e400"  # BNB
    meta["universe"][5]["name"] = "BAD NAME"  # DOGE's slot
    skips = Skips()
    snap = parse.parse_meta_and_asset_ctxs(json.dumps([meta, ctxs]), 1, SIX, skips)
    assert set(snap.assets) == {"BTC", "XRP"}
    reasons = sorted(r for r, _ in skips)
    assert reasons == ["malformed_entry"] * 4 + ["unknown_symbol"] * 2  # ETH and DOGE are then not listed
    assert any("BNB" in d and "funding" in d for _, d in skips)


@pytest.mark.parametrize("body, why", [
    (b"{}", "not \\[meta, contexts\\]"),
    (b'[{"universe": []}]', "not \\[meta, contexts\\]"),
    (b'[{"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40}]}, []]', "1 universe entries but 0"),
])
def test_meta_of_the_wrong_shape_is_malformed(body, why):
    with pytest.raises(MalformedResponse, match=why):
        parse.parse_meta_and_asset_ctxs(body, 1, SIX, Skips())


def test_candles_book_and_trades():
    skips = Skips()
    candles = parse.parse_candles(raw("candle_snapshot.json"), skips)
    assert [(c.t, c.o, c.h, c.l, c.c, c.v, c.n) for c in candles] == [
        (1761436800000, 110812.0, 111420.0, 110655.0, 111090.0, 2104.83421, 41882),
        (1761451200000, 111090.0, 111534.0, 110964.0, 111317.0, 873.11927, 17409)]
    bad = fixture("candle_snapshot.json")
    bad[0]["h"] = "1.0"  # below the open
    assert [c.t for c in parse.parse_candles(json.dumps(bad), skips)] == [1761451200000]
    assert skips[-1][0] == "malformed_entry"
    book = parse.parse_l2_book(raw("l2_book.json"), skips)
    assert book.bids[0].px == 111317.0 and book.asks[0].px == 111318.0 and book.bids[0].n == 19
    frame = parse.decode_frame(raw("ws_trades.json"))
    prints = parse.parse_trades(frame.data, skips)
    assert [(t.side, t.px, t.sz, t.tid) for t in prints] == [("B", 111318.0, 0.00453, 1042719583314566),
                                                             ("A", 111317.0, 0.12, 529416027375040)]
    candle = parse.parse_candle(parse.decode_frame(raw("ws_candle.json")).data, skips)
    assert (candle.symbol, candle.interval, candle.c, candle.n) == ("BTC", "1m", 111317.0, 391)
    with pytest.raises(MalformedResponse):
        parse.parse_l2_book(b'{"coin": "BTC"}', skips)


@pytest.mark.parametrize("text", ["", "garbage", "[]", '{"data": {}}', '{"channel": 5}'])
def test_frames_that_are_not_frames(text):
    with pytest.raises(MalformedResponse, match="not a Hyperliquid frame"):
        parse.decode_frame(text)


def test_pong_and_subscription_frames():
    assert parse.decode_frame(raw("ws_pong.json")).channel == "pong"
    assert parse.decode_frame(raw("ws_subscription_response.json")).channel == "subscriptionResponse"
