"""The REST client against the local fake: retries on 429/5xx/timeouts with backoff, errors at once on
other statuses, malformed answers refused."""

from __future__ import annotations

import pytest

from nof0.engine.market.hyperliquid.info import InfoClient
from nof0.engine.market.provider import MarketError
from tests.fakes.hyperliquid_market import Reply


class Sleeps(list):
    async def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
async def client(fake):
    sleeps = Sleeps()
    retried = []
    c = InfoClient(fake.base_url, timeout_s=0.5, max_retries=3, sleep=sleeps,
                   on_retry=lambda kind, why: retried.append((kind, why)))
    c.sleeps, c.retried = sleeps, retried
    yield c
    await c.aclose()


async def test_typed_requests(client, fake):
    assert (await client.all_mids({"BTC"})) == {"BTC": 111317.5}
    snap = await client.meta_and_asset_ctxs(1761452335744, {"BTC", "ETH"})
    assert set(snap.assets) == {"BTC", "ETH"}
    candles = await client.candle_snapshot("BTC", "4h", 1761436800000, 1761451200000)
    assert len(candles) == 2
    assert fake.requests_of("candleSnapshot")[0] == {
        "type": "candleSnapshot", "req": {"coin": "BTC", "interval": "4h", "startTime": 1761436800000,
                                          "endTime": 1761451200000}}
    assert (await client.l2_book("BTC")).symbol == "BTC"
    assert client.sleeps == []


async def test_429_and_5xx_are_retried_with_growing_backoff(client, fake):
    fake.script("allMids", Reply(status=429), Reply(status=502), Reply(status=500))
    assert (await client.all_mids({"ETH"})) == {"ETH": 3929.85}
    assert len(fake.requests_of("allMids")) == 4
    assert [why for _, why in client.retried] == ["HTTP 429", "HTTP 502", "HTTP 500"]
    # equal jitter: each delay within [d/2, d] of 0.25, 0.5, 1.0 s
    for delay, full in zip(client.sleeps, (0.25, 0.5, 1.0)):
        assert full / 2 <= delay <= full


async def test_retry_after_is_honoured(client, fake):
    fake.script("allMids", Reply(status=429, headers={"Retry-After": "2"}))
    await client.all_mids({"BTC"})
    assert client.sleeps == [2.0]


async def test_gives_up_after_max_retries(client, fake):
    fake.script("metaAndAssetCtxs", *[Reply(status=503)] * 4)
    with pytest.raises(MarketError, match=r"info metaAndAssetCtxs: HTTP 503 \(after 4 attempts\)"):
        await client.meta_and_asset_ctxs(1, None)
    assert len(fake.requests_of("metaAndAssetCtxs")) == 4


async def test_a_timeout_is_retried(client, fake):
    fake.script("allMids", Reply(delay_s=1.0))
    assert await client.all_mids({"BTC"}) == {"BTC": 111317.5}
    assert client.retried == [("allMids", "timed out")]


async def test_other_statuses_fail_at_once_without_the_url(client, fake):
    fake.script("allMids", Reply(status=422, body=b"Failed to deserialize the JSON body"))
    with pytest.raises(MarketError) as err:
        await client.all_mids(None)
    assert "HTTP 422" in str(err.value) and "Failed to deserialize" in str(err.value)
    assert "127.0.0.1" not in str(err.value)
    assert client.retried == []


async def test_malformed_answers_are_errors(client, fake):
    fake.script("allMids", Reply(body=b"<html>maintenance</html>"))
    with pytest.raises(MarketError, match="allMids is not a map"):
        await client.all_mids(None)
    fake.script("metaAndAssetCtxs", Reply(body=b'{"universe": []}'))
    with pytest.raises(MarketError, match="metaAndAssetCtxs is not"):
        await client.meta_and_asset_ctxs(1, None)


async def test_connection_refused_is_retried_then_reported():
    sleeps = Sleeps()
    c = InfoClient("http://127.0.0.1:9", timeout_s=0.5, max_retries=2, sleep=sleeps)
    try:
        with pytest.raises(MarketError, match=r"connection failed .* \(after 3 attempts\)"):
            await c.all_mids(None)
    finally:
        await c.aclose()
    assert len(sleeps) == 2


def test_base_url_must_be_http():
    with pytest.raises(MarketError, match="http:// or https://"):
        InfoClient("ftp://example.invalid")
