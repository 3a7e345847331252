"""Hostile and extreme input is rejected with its line and field, never crashes a batch (review of issue 3,
finding 7 and minor items b, c, d)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
import pytest

from nof0.kernel.decode import Rejected, decode_line, validate_event
from nof0.kernel.lines import HEAD_BYTES, LineSplitter, OverlongLine
from nof0.ingest.service import IngestService
from nof0.jobs.views import refresh_views
from nof0.ingest.traders_sync import sync_traders
from tests.ingest import factories as f
from tests.ingest.factories import T0

META = json.loads((Path(__file__).parents[1] / "fixtures" / "hyperliquid-meta-and-asset-ctxs.json").read_text())


def _line(**event) -> str:
    return json.dumps(event)


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


TICK = _line(type="price_tick", symbol="BTC", price=100.0, ts_ms=T0)


async def rows(rt, sql: str, *params) -> list[dict]:
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


# ------------------------------------------------------------------------------------- nesting

@pytest.mark.parametrize("depth", [40, 5_000])
def test_deep_nesting_is_a_rejection_naming_the_line_and_field(depth):
    raw = '{"type": "model", "id": "m1", "trader_config": ' + _nested(depth) + "}"
    with pytest.raises(Rejected) as exc:
        decode_line(raw, 3)
    r = exc.value.rejection
    assert (r.line, r.event_type, r.field) == (3, "model", "trader_config")
    assert "nested" in r.reason and str(r).startswith("line 3 (model): trader_config")


async def test_a_deeply_nested_line_does_not_stop_its_batch(rt):
    lines = [_line(type="model", id="m1"), _line(type="symbol", symbol="BTC"),
             '{"type": "conversation_message", "model_id": "m1", "role": "user", "content": "x", "ts_ms": %d,'
             ' "metadata": %s}' % (T0, _nested(1_000)), TICK]
    report = await IngestService(rt).ingest_lines(lines, source="deep")
    assert (report.accepted, report.rejected) == (3, 1)
    assert (report.rejections[0].line, report.rejections[0].field) == (3, "metadata")
    assert len(await rows(rt, "SELECT * FROM price_ticks")) == 1


def test_an_in_process_event_nested_too_deeply_is_rejected():
    deep: dict = {}
    node = deep
    for _ in range(5_000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(Rejected) as exc:
        validate_event(f.position("p1", exit_plan=deep), 2)
    assert (exc.value.rejection.line, exc.value.rejection.field) == (2, "exit_plan")


def _levels(n: int, kind: str) -> object:
    value: object = 1
    for _ in range(n):
        value = {"a": value} if kind == "object" else [value]
    return value


@pytest.mark.parametrize("kind", ["object", "array"])
def test_nesting_is_limited_to_the_documented_32_levels(kind):
    """docs/events.md: free-form objects nest at most 32 levels; 33 is one too many, as a line or in-process."""
    for levels, accepted in ((32, True), (33, False)):
        raw = json.dumps({"type": "model", "id": "m1", "display_name": "M",
                          "trader_config": {"x": _levels(levels - 1, kind)}})
        event = f.position("p1", exit_plan={"x": _levels(levels - 1, kind)})
        for check in (lambda: decode_line(raw, 1), lambda: validate_event(event, 1)):
            if accepted:
                check()
            else:
                with pytest.raises(Rejected, match="nested deeper than 32 levels"):
                    check()


# ------------------------------------------------------------------------------------- NUL and lone surrogates

@pytest.mark.parametrize(("event", "field"), [
    ({"type": "conversation_message", "model_id": "m1", "role": "user", "content": "a\u0000b", "ts_ms": T0}, "content"),
    ({"type": "conversation_message", "model_id": "m1", "role": "user", "content": "ok", "ts_ms": T0,
      "metadata": {"tool": {"note": "x\u0000"}}}, "metadata.tool.note"),
    ({"type": "model", "id": "m1", "trader_config": {"bad\u0000key": 1}}, "trader_config.'bad\\x00key'"),
    ({"type": "fill", "model_id": "m1", "symbol": "BTC", "side": "buy", "price": 1, "size": 1, "fee_usd": 0,
      "ts_ms": T0, "oid": 1, "tid": 1, "exit_plan": {"why": ["fine", "\u0000"]}}, "exit_plan.why[1]"),
])
def test_nul_is_rejected_naming_the_field(event, field):
    with pytest.raises(Rejected) as exc:
        decode_line(json.dumps(event), 5)
    r = exc.value.rejection
    assert (r.line, r.field) == (5, field) and "NUL" in r.reason


async def test_nul_and_lone_surrogates_in_process_are_rejected_and_dead_lettered(rt):
    service = IngestService(rt)
    report = await service.ingest([f.model("m1"), f.symbol("BTC"), f.model("m2", display_name="bad\ud800name"),
                                   f.message("m1", content="nul\x00here"),
                                   f.position("p1", metadata={"deep": [{"x": "\udfff"}]}), f.tick("BTC")])
    assert (report.accepted, report.rejected) == (3, 3)
    assert [(r.where, r.field) for r in report.rejections] == [
        ("event 3", "display_name"), ("event 4", "content"), ("event 5", "metadata.deep[0].x")]
    assert "lone surrogate" in report.rejections[0].reason and "NUL" in report.rejections[1].reason
    dead = await rows(rt, "SELECT line_no, field, raw FROM ingest_dead_letters ORDER BY line_no")
    assert [(d["line_no"], d["field"]) for d in dead] == [(3, "display_name"), (4, "content"), (5, "metadata.deep[0].x")]
    assert "\\ud800" in dead[0]["raw"] and "\\x00" in dead[1]["raw"]
    again = await service.ingest([f.model("m2", display_name="bad\ud800name")])
    assert again.rejected == 1 and len(await rows(rt, "SELECT * FROM ingest_dead_letters")) == 3


async def test_a_value_too_big_for_an_index_is_refused_alone(rt):
    # no index of the schema can be overflowed by a valid event; this test's own index can ("index row
    # size exceeds maximum", a program limit): the refusal must stay with its event
    async with rt.pool.connection() as conn:
        await conn.execute("CREATE INDEX test_big ON conversation_messages (content)")
    big = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))  # ~9 KB, incompressible
    report = await IngestService(rt).ingest([f.model("m1"), f.message("m1", content=big), f.message("m1", dt=1)])
    assert (report.accepted, report.rejected) == (2, 1)
    assert report.rejections[0].where == "event 2" and "refused by the database" in report.rejections[0].reason


async def test_a_line_that_is_not_text_is_rejected(rt):
    report = await IngestService(rt).ingest_lines([TICK, 42], source="odd")  # type: ignore[list-item]
    assert report.rejected == 2  # the tick's symbol is unknown here
    assert [(r.where, r.reason) for r in report.rejections if r.event_type is None] == [
        ("line 2", "not a line of text: int")]


# ------------------------------------------------------------------------------------- long lines and dead letters

def test_the_splitter_skips_an_overlong_line_to_the_next_newline():
    splitter = LineSplitter(max_bytes=10)
    data = b"short\n" + b"x" * 25 + b"\nafter\nlast"
    out = []
    for i in range(0, len(data), 4):  # in small chunks, so the long line spans many
        out += splitter.feed(data[i:i + 4])
    out += splitter.close()
    assert out[0] == b"short" and out[2:] == [b"after", b"last"]
    long = out[1]
    assert isinstance(long, OverlongLine)
    assert (long.length, long.head, long.md5) == (25, b"x" * 25, hashlib.md5(b"x" * 25).hexdigest())


async def test_dead_letters_keep_the_start_of_a_long_line_and_the_md5_of_all_of_it(rt):
    huge = '{"type": "price_tick", "symbol": "BTC", "price": "' + "9" * 300_000 + '", "ts_ms": 1}'
    service = IngestService(rt)
    assert (await service.ingest_lines([huge], source="big")).rejected == 1
    (dead,) = await rows(rt, "SELECT raw, raw_md5 FROM ingest_dead_letters")
    assert dead["raw_md5"] == hashlib.md5(huge.encode()).hexdigest()
    assert dead["raw"].startswith(huge[:1000]) and len(dead["raw"].encode()) < HEAD_BYTES + 100
    assert dead["raw"].endswith(f"[... truncated: {len(huge)} bytes in total]")
    assert (await service.ingest_lines([huge], source="big")).rejected == 1
    assert len(await rows(rt, "SELECT * FROM ingest_dead_letters")) == 1  # the same long line, recorded once


# ------------------------------------------------------------------------------------- bounds (minor b, c)

def test_non_finite_market_numbers_are_rejected_naming_the_field():
    meta = json.loads(json.dumps(META))
    meta[1][0]["impactPxs"] = ["111521.0", "1e400"]
    with pytest.raises(Rejected) as exc:
        decode_line(json.dumps({"type": "market_meta", "provider": "hyperliquid", "ts_ms": T0,
                                "meta_and_asset_ctxs": meta}), 1)
    assert (exc.value.rejection.field, exc.value.rejection.value) == ("meta_and_asset_ctxs[1][0].impactPxs[1]", "1e400")


@pytest.mark.parametrize(("event", "field"), [
    (f.snapshot(equity=1e-300), "equity_usd"),
    (f.snapshot(equity=-1e-9), "equity_usd"),
    (f.snapshot(equity=2e15), "equity_usd"),
    (f.snapshot(realized_pnl=-2e15), "realized_pnl"),
    (f.fill("buy", 100, 1, 1, fee=1e16), "fee_usd"),
    (f.tick(price=2e12), "price"),
    (f.fill("buy", 100, 2e15, 1), "size"),
    (f.model("m9", starting_capital_usd=1e-300), "starting_capital_usd"),
])
def test_extreme_amounts_are_rejected_naming_the_field(event, field):
    with pytest.raises(Rejected) as exc:
        validate_event(event, 1)
    assert exc.value.rejection.field == field


async def test_the_extremes_still_accepted_keep_the_views_computable(rt):
    report = await IngestService(rt).ingest([
        f.model("m1"), f.snapshot(dt=0, equity=1e-6), f.snapshot(dt=1, equity=1e15), f.snapshot(dt=2, equity=1e-6),
        f.snapshot(dt=3, equity=0.0)])
    assert (report.accepted, report.rejected) == (5, 0)
    await refresh_views(rt)
    (board,) = await rows(rt, "SELECT equity, return_pct FROM v_leaderboard")
    assert (board["equity"], board["return_pct"]) == (0.0, -100.0)


# ------------------------------------------------------------------------------------- where (minor d)

async def test_in_process_rejections_name_the_event_number(rt):
    report = await IngestService(rt).ingest([f.model("m1"), f.tick("ETH")])
    assert str(report.rejections[0]).startswith("event 2 (price_tick): symbol='ETH'")


async def test_traders_sync_rejections_name_the_trader_in_manager_yaml(rt):
    rt.config.manager.traders[1].id = "bad id"
    report = await sync_traders(rt)
    assert report.rejected == 2  # its model and its state
    manager = rt.config.root.files.manager
    assert [str(r).split(":")[0] for r in report.rejections] == [f"{manager} traders[1] (model)",
                                                                 f"{manager} traders[1] (trader_state)"]


def test_dead_letter_md5_is_computed_by_the_database_for_writers_that_do_not_give_it(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("INSERT INTO ingest_dead_letters (source, reason, raw) VALUES ('x', 'y', 'abc')")
        assert conn.execute("SELECT raw_md5 FROM ingest_dead_letters").fetchone() == (hashlib.md5(b"abc").hexdigest(),)


# ------------------------------------------------------------------ ids are matched whole (issue 8)

_NEWLINE_IDS = [
    ("model", {"type": "model", "id": "gpt-5\n", "display_name": "x"}, "id"),
    ("symbol", {"type": "symbol", "symbol": "BTC\n"}, "symbol"),
    ("quote", {"type": "symbol", "symbol": "BTC", "quote_currency": "USD\n"}, "quote_currency"),
    ("tick", {"type": "price_tick", "symbol": "BTC\n", "price": 1.0, "ts_ms": T0}, "symbol"),
    ("message", {"type": "conversation_message", "model_id": "m1\n", "role": "user", "content": "hi",
                 "ts_ms": T0}, "model_id"),
    ("decision", {"type": "decision_cycle", "model_id": "m1", "cycle_number": 1, "success": True,
                  "executed_at": "2025-10-25T00:00:00Z",
                  "decisions": [{"signal": "hold", "symbol": "BTC\n"}]}, "decisions[0].symbol"),
]


@pytest.mark.parametrize("name,event,field", _NEWLINE_IDS, ids=[n for n, *_ in _NEWLINE_IDS])
def test_an_id_with_a_trailing_newline_is_rejected(name, event, field):
    with pytest.raises(Rejected) as err:
        decode_line(json.dumps(event), 1)
    assert err.value.rejection.field == field


def test_typed_events_with_a_trailing_newline_are_rejected_too():
    with pytest.raises(Rejected) as err:
        validate_event(f.position("p1\n"), 1)
    assert err.value.rejection.field == "id" and "1-64 characters" in err.value.rejection.reason


def test_key_parts_and_config_ids_are_matched_whole(tmp_path):
    import shutil

    from nof0.cache.keys import InvalidKeyPart, validate_part
    from nof0.config import ConfigError, load_config
    from tests.conftest import ETC

    with pytest.raises(InvalidKeyPart):
        validate_part("model_id", "gpt-5\n")
    etc = tmp_path / "etc"
    shutil.copytree(ETC.parent, etc)
    manager = etc / "manager.yaml"
    manager.write_text(manager.read_text().replace("- id: trader_aggressive_short", '- id: "trader_aggressive_short\\n"'))
    with pytest.raises(ConfigError, match=r"traders\[0\]\.id"):
        load_config(etc / "nof0.yaml", env={})


def _sample(rt, name: str, **labels) -> float:
    return rt.metrics.registry.get_sample_value(name, labels or None) or 0.0


async def test_one_bad_id_among_many_costs_only_its_own_rejection(rt):
    """A trailing-newline id used to pass validation and fail the models CHECK in Postgres, which sent a
    5,000-event batch into one transaction per event. Now it is rejected before the batch is written."""
    service = IngestService(rt, batch_size=1000)
    await service.ingest([f.model("m1"), f.symbol("BTC")])
    events = [f.tick("BTC", 100.0 + i, dt=i) for i in range(2000)]
    events.insert(700, f.model("gpt-5\n"))
    commits = _sample(rt, "nof0_pg_write_seconds_count", pipeline="ingest")
    report = await service.ingest(events)
    assert (report.accepted, report.rejected) == (2000, 1)
    assert report.rejections[0].where == "event 701" and report.rejections[0].field == "id"
    assert _sample(rt, "nof0_ingest_batch_splits_total") == 0
    assert _sample(rt, "nof0_pg_write_seconds_count", pipeline="ingest") - commits == 3  # one per batch


async def test_a_database_refusal_costs_a_logarithmic_number_of_transactions(rt):
    """An event only the database refuses (a constraint no validator knows) is isolated by halving."""
    service = IngestService(rt, batch_size=256)
    await service.ingest([f.model("m1"), f.symbol("BTC")])
    async with rt.pool.connection() as conn:
        await conn.execute("ALTER TABLE price_ticks ADD CONSTRAINT test_no_42 CHECK (price <> 42)")
    events = [f.tick("BTC", 1000.0 + i, dt=i) for i in range(256)]
    events[100] = f.tick("BTC", 42.0, dt=100)
    commits = _sample(rt, "nof0_pg_write_seconds_count", pipeline="ingest")
    report = await service.ingest(events)
    assert (report.accepted, report.rejected) == (255, 1) and report.rejections[0].where == "event 101"
    assert _sample(rt, "nof0_ingest_batch_splits_total") == 8  # 256 -> 128 -> ... -> 2 -> 1
    # one committed transaction per good half (8) and one for the rejection, not one per event (256)
    assert _sample(rt, "nof0_pg_write_seconds_count", pipeline="ingest") - commits == 9
