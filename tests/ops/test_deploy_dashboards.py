"""The shipped Grafana dashboards and Prometheus configuration (deploy/) against a real ``nof0 run``.

Every metric a dashboard queries must be exported by the ``/metrics`` of ``nof0 run`` while it runs an
arena (the shipped sim market, sim exchange and strategy traders), with samples for everything such
an arena does; the scrape configuration must target the ports the service documents."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from nof0.obs.metrics import Metrics
from nof0.service import run_service
from tests.conftest import REPO
from tests.engine.test_engine_traders_kill9 import _env, _etc
from tests.scale.test_roles import _SpyEngine, _free_port

DEPLOY = REPO / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("nof0-*.json"))

# Queried, exported, but a healthy arena of a minute does not make them happen (so they may have no
# sample yet). Everything else a dashboard shows must have one.
NOT_IN_A_SHORT_ARENA = {
    "nof0_market_reconnects_total": "the sim feed has no connection to lose",
    "nof0_market_gaps_total": "no reconnect, no gap",
    "nof0_market_stale_total": "the sim feed ticks every second",
    "nof0_market_skipped_total": "the sim feed sends no malformed data",
    "nof0_market_errors_total": "nothing fails",
    "nof0_trader_guard_rejections_total": "the strategies may size within every guard",
    "nof0_trader_errors_total": "nothing fails",
    "nof0_trader_model_seconds": "strategy traders call no model",
    "nof0_trader_tokens_total": "strategy traders call no model",
    "nof0_trader_cost_usd_total": "strategy traders call no model",
    "nof0_sim_liquidations_total": "no position goes that far in a minute",
    "nof0_job_failures_total": "nothing fails",
    "nof0_redis_write_errors_total": "Redis is up",
    "nof0_retention_archived_rows_total": "retention runs an hour after start",
    "nof0_pg_replica_lag_seconds": "no read replica is configured",
    "nof0_pg_replica_fallbacks_total": "no read replica is configured",
    "nof0_cache_rebuilds_total": "depends on the rebuild watcher",
    "nof0_cache_rebuild_seconds": "depends on the rebuild watcher",
    "nof0_outbox_published_total": "depends on the trades outbox",
    "nof0_outbox_pending": "depends on the trades outbox",
    "nof0_stream_dropped_total": "no slow /api/stream client",
    "nof0_stream_clients": "no /api/stream client",
    "nof0_cache_fill_seconds": "observed only when a request rebuilds a payload",
}

_FUNCTIONS_AND_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "le", "inf", "nan",
}


def dashboard_exprs() -> list[str]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            out += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
        for var in board.get("templating", {}).get("list", []):
            if isinstance(var.get("query"), str) and var.get("type") == "query":
                out.append(var["query"])
    return out


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects: string literals, label matchers, grouping
    clauses, durations and function names are not metric names."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings ("$job", "hit")
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    if text.lstrip().startswith("label_values("):  # a Grafana variable query: label_values(metric, label)
        text = text.split("(", 1)[1].split(",", 1)[0]
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word, after = m.group(0), text[m.end():].lstrip()[:1]
        if after == "(" or word.lower() in _FUNCTIONS_AND_KEYWORDS:
            continue  # a function (rate, histogram_quantile, time, sum) or an operator keyword
        names.add(word)
    return names


def _families(text: str) -> dict[str, tuple[str, int]]:
    """Family name -> (type, number of samples) of an exposition; the ``_created`` timestamps that
    prometheus_client adds beside counters are no metric of nof0's."""
    return {f.name: (f.type, len([s for s in f.samples if not s.name.endswith("_created")]))
            for f in text_string_to_metric_families(text) if not f.name.endswith("_created")}


_SUFFIXES = {"_bucket": ("histogram",), "_sum": ("histogram", "summary"), "_count": ("histogram", "summary"),
             "_total": ("counter",)}


def family_of(name: str, families: dict[str, tuple[str, int]]) -> str | None:
    """The exported family a queried series name belongs to (``x_bucket`` of histogram ``x``, ``x_total``
    of counter ``x``, a gauge by its own name), or None when nothing exports it."""
    for suffix, kinds in _SUFFIXES.items():
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and base in families and families[base][0] in kinds:
            return base
    if name in families and families[name][0] in ("gauge", "histogram", "summary", "unknown"):
        return name
    return None


def _display(family: str, kind: str) -> str:
    return family + "_total" if kind == "counter" else family


def test_the_expression_parser_finds_metric_names_only():
    assert metric_names('histogram_quantile(0.99, sum by (le, op) (rate(nof0_pg_seconds_bucket{job=~"$job"}[5m])))'
                        ) == {"nof0_pg_seconds_bucket"}
    assert metric_names('sum(rate(a_total{outcome="hit"}[5m])) / sum(rate(a_total[5m])) * 60') == {"a_total"}
    assert metric_names("time() - nof0_job_last_success_timestamp") == {"nof0_job_last_success_timestamp"}
    assert metric_names("label_values(nof0_ingest_events_total, job)") == {"nof0_ingest_events_total"}
    fams = {"x": ("histogram", 3), "c": ("counter", 1), "g": ("gauge", 1)}
    assert [family_of(n, fams) for n in ("x_bucket", "x_count", "c_total", "g", "c", "g_total", "y")] == [
        "x", "x", "c", "g", None, None, None]


def test_every_metric_is_on_a_dashboard_and_in_the_docs():
    queried = set().union(*(metric_names(e) for e in dashboard_exprs()))
    docs = (REPO / "docs" / "metrics.md").read_text()
    families = _families(_exposition_of_every_family())
    for family, (kind, _) in families.items():
        shown = _display(family, kind)
        assert any(family_of(q, {family: families[family]}) for q in queried), f"{shown} is on no dashboard"
        assert f"`{shown}`" in docs, f"{shown} is not in docs/metrics.md"


def _exposition_of_every_family() -> str:
    from prometheus_client import generate_latest

    return generate_latest(Metrics().registry).decode()


def test_prometheus_scrapes_the_documented_ports():
    conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    manifest = yaml.safe_load((REPO / "etc" / "nof0.yaml").read_text())
    api_port = re.search(r"(\d+)\}?$", str(manifest["api"]["port"])).group(1)
    metrics_port = re.search(r"(\d+)\}?$", str(manifest["api"]["metrics_port"])).group(1)
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    targets = {name: [t for sc in j["static_configs"] for t in sc["targets"]] for name, j in jobs.items()}
    assert all(j.get("metrics_path", "/metrics") == "/metrics" for j in jobs.values())
    assert any(t.endswith(f":{api_port}") for t in targets["nof0"])
    assert any(t.endswith(f":{metrics_port}") for t in targets["nof0-engine"])
    provisioning = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "nof0.yml").read_text())
    uids = {d["uid"] for d in provisioning["datasources"]}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']} uses an unknown datasource"


def test_every_dashboard_metric_is_exported_by_a_running_arena(tmp_path, test_servers, pg_dsn, redis_prefix):
    queried = set().union(*(metric_names(e) for e in dashboard_exprs()))
    assert len(DASHBOARDS) >= 4 and queried
    manifest = _etc(tmp_path, redis_prefix)
    port = yaml.safe_load(manifest.read_text())["api"]["port"]
    proc = subprocess.Popen([sys.executable, "-m", "nof0.cli", "--config", str(manifest), "run"],
                            env=_env(pg_dsn, test_servers.redis_url), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        families, missing = _scrape_until_sampled(proc, port, queried, deadline_s=150)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    absent = sorted(q for q in queried if family_of(q, families) is None)
    assert not absent, f"queried by a dashboard, not exported by nof0 run: {absent}"
    assert not missing, f"queried by a dashboard, no sample after a running arena: {missing}"


def _scrape_until_sampled(proc: subprocess.Popen, port: int, queried: set[str], deadline_s: float):
    """Scrape (and ask the API, so the read path is used) until every metric the arena must touch has a
    sample, or the deadline passes; another process's progress has no event to wait on."""
    end = time.monotonic() + deadline_s
    families: dict[str, tuple[str, int]] = {}
    missing: list[str] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise AssertionError(f"nof0 run exited {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")
            try:
                for path in ("/api/leaderboard", "/api/crypto-prices", "/api/trades", "/api/account-totals"):
                    client.get(path)
                families = _families(client.get("/metrics").text)
            except httpx.TransportError:
                time.sleep(0.5)  # not listening yet
                continue
            missing = sorted(q for q in queried if (f := family_of(q, families)) is not None
                             and families[f][1] == 0 and _display(f, families[f][0]) not in NOT_IN_A_SHORT_ARENA
                             and f not in NOT_IN_A_SHORT_ARENA)
            if families and not missing:
                break
            time.sleep(1)
    return families, missing


async def test_an_engine_process_answers_metrics_on_its_metrics_port(rt, capsys):
    api_port, metrics_port, stop = _free_port(), _free_port(), asyncio.Event()
    service = asyncio.create_task(run_service(rt, stop, host="127.0.0.1", port=api_port, role="engine",
                                              engine=_SpyEngine(rt), metrics_port=metrics_port))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as c:
            for _ in range(200):
                try:
                    answer = await c.get("/metrics")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)  # the listener starts with the service
            assert answer.status_code == 200
            families = _families(answer.text)
            assert families["nof0_pg_seconds"][1] > 0 and families["nof0_redis_seconds"][1] > 0
            assert (await c.get("/api/leaderboard")).status_code == 404  # metrics only, no API
    finally:
        stop.set()
        assert await asyncio.wait_for(service, 30) == 0
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in capsys.readouterr().out
