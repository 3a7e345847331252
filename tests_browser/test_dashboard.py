"""The dashboard in headless Chromium: an imported nof1 capture, then a running arena fed live."""

from __future__ import annotations

import json
import time
from typing import Any

from tests_browser.conftest import CAPTURE, SCREENSHOTS, Arena

WAIT_MS = 20_000


def _models_of(arena: Arena) -> set[str]:
    """Every model the public API knows (what the leaderboard and the chart must show)."""
    ids = {e["id"] for e in arena.api("/api/leaderboard")["leaderboard"]}
    ids |= {v["model_id"] for v in arena.api("/api/since-inception-values")["sinceInceptionValues"]}
    ids |= {a["model_id"] for a in arena.api("/api/positions")["accountTotals"]}
    ids |= {t["model_id"] for t in arena.api("/api/trades")["trades"]}
    return ids


def _attr_list(page: Any, selector: str, attr: str) -> list[str]:
    return page.eval_on_selector_all(selector, f"els => els.map(e => e.getAttribute('{attr}'))")


def _shows_every_model(page: Any, models: set[str]) -> None:
    page.wait_for_function("n => document.querySelectorAll('#leaderboard tbody tr[data-model]').length === n",
                           arg=len(models), timeout=WAIT_MS)
    assert set(_attr_list(page, "#leaderboard tbody tr", "data-model")) == models
    lines = page.eval_on_selector_all("#chart path.series", "ps => ps.map(p => [p.dataset.model, p.getAttribute('d')])")
    assert {m for m, _ in lines} == models
    assert all(d and d.startswith("M") and "L" in d for _, d in lines), lines  # a drawn line each
    assert set(_attr_list(page, "#legend li", "data-model")) == models


def _no_reload_marker(page: Any) -> None:
    page.evaluate("window.__sameDocument = true")


def _still_same_document(page: Any) -> bool:
    return page.evaluate("window.__sameDocument === true")


def _line(event: dict[str, Any]) -> bytes:
    return (json.dumps(event) + "\n").encode()


def test_an_imported_capture(arena, page_factory, tmp_path):
    arena.nof0("import", str(CAPTURE))
    arena.start("serve", log=tmp_path / "serve.log")
    models = _models_of(arena)
    assert len(models) >= 7

    desk = page_factory(width=1280, height=900)
    page = desk.open(arena.url + "/")
    _shows_every_model(page, models)
    page.wait_for_selector("#conn[data-state='live']", timeout=WAIT_MS)
    prices = json.loads((CAPTURE / "crypto-prices.json").read_text())["prices"]
    assert set(_attr_list(page, "#ticker .tick", "data-symbol")) == set(prices)
    held = json.loads((CAPTURE / "positions.json").read_text())["accountTotals"]
    assert len(_attr_list(page, "#positions tbody tr", "data-model")) == sum(len(a["positions"]) for a in held)
    chatting = {c["model_id"] for c in json.loads((CAPTURE / "conversations.json").read_text())["conversations"]}
    assert set(_attr_list(page, "#chat article.cycle", "data-model")) == chatting
    # the reasoning is put in only when asked for, as text: by the details' toggle event, which comes after
    # the click, and a live update may re-render the chat in between (a closed one again): open it until
    # its text is there
    first = page.locator("#chat article.cycle details").first
    deadline = time.monotonic() + WAIT_MS / 1000
    while not (first.evaluate("d => d.open") and first.locator("pre").inner_text().strip()):
        assert time.monotonic() < deadline, "the first cycle's reasoning never showed"
        if not first.evaluate("d => d.open"):
            first.locator("summary").click()
        page.wait_for_timeout(50)
    page.click("#range button[data-range='72h']")
    page.click("#unit button[data-unit='pct']")
    _shows_every_model(page, models)
    page.click("#range button[data-range='all']")
    page.click("#unit button[data-unit='usd']")
    page.screenshot(path=str(SCREENSHOTS / "imported-desktop.png"), full_page=True)

    # a trade committed after the page loaded shows up without a reload
    _no_reload_marker(page)
    now = time.time()
    trade = {"type": "trade", "id": "gpt-5_browser_after_load", "model_id": "gpt-5", "symbol": "BTC", "side": "long",
             "quantity": 0.25, "entry_price": 110_000.0, "exit_price": 111_000.0, "entry_time": now - 600,
             "exit_time": now - 5, "realized_net_pnl": 250.0, "leverage": 10}
    arena.nof0("ingest", "-", stdin=_line(trade))
    row = page.wait_for_selector("#trades tbody tr[data-trade='gpt-5_browser_after_load']", timeout=WAIT_MS)
    assert "+$250.00" in row.inner_text()
    assert _still_same_document(page)
    assert int(page.evaluate("document.body.dataset.events || '0'")) >= 1  # it came over the stream
    page.screenshot(path=str(SCREENSHOTS / "imported-after-trade.png"), full_page=True)

    phone = page_factory(width=390, height=844)
    small = phone.open(arena.url + "/")
    _shows_every_model(small, models)
    # nothing wider than the screen: wide tables scroll inside their panel
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    small.screenshot(path=str(SCREENSHOTS / "imported-phone.png"), full_page=True)
    assert desk.errors == [] and phone.errors == []


def test_a_running_arena_updates_on_screen(arena, page_factory, tmp_path):
    arena.nof0("traders", "sync")
    arena.start("run", log=tmp_path / "run.log")
    traders = {t["id"]: t for t in arena.api("/api/traders")["traders"]}
    assert traders and all(t["status"] == "running" for t in traders.values())
    desk = page_factory(width=1280, height=900)
    page = desk.open(arena.url + "/")
    page.wait_for_selector("#conn[data-state='live']", timeout=WAIT_MS)
    _shows_every_model(page, set(traders))
    assert set(_attr_list(page, "#traders tbody tr", "data-model")) == set(traders)
    _no_reload_marker(page)
    # the arena's own market feed (the sim market of etc/market.yaml) moves the ticker on its own
    page.wait_for_selector("#ticker [data-symbol='ETH'] .px", timeout=WAIT_MS)
    eth = page.eval_on_selector("#ticker [data-symbol='ETH'] .px", "e => e.textContent")
    page.wait_for_function("t => document.querySelector(\"#ticker [data-symbol='ETH'] .px\").textContent !== t",
                           arg=eth, timeout=WAIT_MS)

    feed = arena.producer()
    assert feed.stdin is not None
    now_ms = int(time.time() * 1000)
    trader = sorted(traders)[0]
    events = [{"type": "symbol", "symbol": "BTC"},
              {"type": "price_tick", "symbol": "BTC", "price": 123_456.5, "ts_ms": now_ms}]
    events += [{"type": "equity_snapshot", "model_id": t, "ts_ms": now_ms + 1000 + i, "equity_usd": 10_000 + 50 * (i + 1)}
               for i, t in enumerate(sorted(traders))]
    events.append({"type": "trade", "id": f"{trader}_live_1", "model_id": trader, "symbol": "BTC", "side": "short",
                   "quantity": -0.1, "entry_price": 124_000.0, "exit_price": 123_456.5,
                   "entry_time": now_ms / 1000 - 300, "exit_time": now_ms / 1000, "realized_net_pnl": 54.35})
    events.append({"type": "conversation_message", "model_id": trader, "role": "assistant",
                   "content": "<img src=x onerror=alert(1)> holding BTC short", "ts_ms": now_ms})
    for ev in events:
        feed.stdin.write(_line(ev))
    feed.stdin.flush()

    page.wait_for_function("() => (document.querySelector('#ticker [data-symbol=\"BTC\"]') || {}).textContent"
                           "?.includes('123,456.5')", timeout=WAIT_MS)
    page.wait_for_selector(f"#trades tbody tr[data-trade='{trader}_live_1']", timeout=WAIT_MS)
    article = page.wait_for_selector(f"#chat article.cycle[data-model='{trader}']", timeout=WAIT_MS)
    assert "<img src=x onerror=alert(1)>" in article.inner_text()  # shown as text, never parsed
    assert page.locator("#chat img").count() == 0
    # the equity snapshots: every trader's line now ends at its new value
    page.wait_for_function("n => Array.from(document.querySelectorAll('#legend li .v'))"
                           ".filter(v => v.textContent !== '$10,000.00').length === n", arg=len(traders), timeout=WAIT_MS)

    pause_until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    spec = arena.api("/api/traders")["traders"]
    t0 = next(t for t in spec if t["id"] == trader)
    feed.stdin.write(_line({"type": "trader_state", "trader_id": trader, "exchange_provider": t0["exchange_provider"],
                            "market_provider": t0["market_provider"], "pause_until": pause_until}))
    feed.stdin.flush()
    page.wait_for_selector(f"#traders tbody tr[data-model='{trader}'] .badge.paused", timeout=WAIT_MS)
    # the engine's own traders decide on their schedule (every 20-30 s): their cycles appear, once each,
    # with the decisions' signals
    page.wait_for_selector("#chat article.cycle .decisions .badge", timeout=90_000)
    keys = _attr_list(page, "#chat article.cycle", "data-key")
    assert len(keys) == len(set(keys)), keys
    assert _still_same_document(page)
    page.screenshot(path=str(SCREENSHOTS / "running-desktop.png"), full_page=True)
    assert desk.errors == []


def test_without_the_stream_the_page_polls(arena, page_factory, tmp_path):
    """A proxy that does not pass /api/stream: the page says so and polls, and still shows new trades."""
    arena.nof0("import", str(CAPTURE))
    arena.start("serve", log=tmp_path / "serve.log")
    desk = page_factory(width=1280, height=900)
    desk.page.route("**/api/stream", lambda route: route.fulfill(status=502, body="bad gateway"))
    page = desk.open(arena.url + "/")
    page.wait_for_selector("#conn[data-state='polling']", timeout=WAIT_MS)
    _shows_every_model(page, _models_of(arena))
    _no_reload_marker(page)
    now = time.time()
    trade = {"type": "trade", "id": "grok-4_browser_polled", "model_id": "grok-4", "symbol": "ETH", "side": "short",
             "quantity": -1.0, "entry_price": 4000.0, "exit_price": 3990.0, "entry_time": now - 600,
             "exit_time": now - 2, "realized_net_pnl": 10.0}
    arena.nof0("ingest", "-", stdin=_line(trade))
    page.wait_for_selector("#trades tbody tr[data-trade='grok-4_browser_polled']", timeout=WAIT_MS)
    assert _still_same_document(page) and page.evaluate("document.body.dataset.events || '0'") == "0"
    page.screenshot(path=str(SCREENSHOTS / "imported-polling.png"), full_page=True)
    # the refused stream is the only error the console shows
    assert all("/api/stream" in e or "502" in e for e in desk.errors), desk.errors
