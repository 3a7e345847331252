"""Every design key (design 3.2) comes back from Postgres (design 3.4), with the values the ingest
publishers and the jobs wrote, and the sentinel says the keyspace is whole."""

from __future__ import annotations

import json

from nof0.cli import main
from nof0.jobs.rebuild import FAMILIES, rebuild_caches
from nof0.jobs.tasks import analytics_job
from tests.analytics.test_commands import cli_config  # noqa: F401  (fixture)
from tests.ops.arena import MODELS, ingest_arena

# key patterns (cache/keys.py) a rebuild does not write: coordination, only written on reads, or the
# changes stream (a log of commits for the API processes, not a value rebuilt from Postgres)
NOT_REBUILT = {"positions_lock", "lock", "api_payload", "changes_stream"}


def dump_keys(redis_sync, prefix: str) -> dict[str, object]:
    """Every key under the prefix -> its decoded value (JSON parsed; TTLs left out: they restart)."""
    out: dict[str, object] = {}
    for raw in redis_sync.scan_iter(match=f"{prefix}:*", count=1000):
        name = raw.decode()
        kind = redis_sync.type(name).decode()
        if kind == "string":
            value = redis_sync.get(name)
            out[name] = _json(value)
        elif kind == "hash":
            out[name] = {k.decode(): _json(v) for k, v in redis_sync.hgetall(name).items()}
        elif kind == "list":
            out[name] = [_json(v) for v in redis_sync.lrange(name, 0, -1)]
        elif kind == "zset":
            out[name] = redis_sync.zrange(name, 0, -1, withscores=True)
        elif kind == "stream":
            out[name] = [(i.decode(), {k.decode(): v.decode() for k, v in f.items()})
                         for i, f in redis_sync.xrange(name)]
    return out


def _json(value: bytes) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return value.decode()


def design_keys(keys: dict[str, object], prefix: str) -> dict[str, object]:
    return {k: v for k, v in keys.items()
            if not k.startswith((f"{prefix}:lock:", f"{prefix}:api:", f"{prefix}:cache:")) and k != f"{prefix}:changes"}


async def test_every_family_comes_back_with_the_same_values(rt, redis_sync, redis_prefix):
    await ingest_arena(rt)
    await analytics_job(rt)  # leaderboard, since-inception and analytics keys, as the scheduler writes them
    before = design_keys(dump_keys(redis_sync, redis_prefix), redis_prefix)
    families = {name.split(":")[1] for name in before}
    assert families >= {"price", "crypto_prices", "positions", "trades", "ingest", "leaderboard", "since_inception",
                        "analytics", "conversations", "decision", "trader", "market", "sim"}, families

    for raw in redis_sync.scan_iter(match=f"{redis_prefix}:*"):
        redis_sync.delete(raw)
    report = await rebuild_caches(rt, "manual")
    assert report.status == "ok", report.failed
    assert set(report.owners) >= set(FAMILIES) and report.owners["positions"] == len(MODELS)
    after = dump_keys(redis_sync, redis_prefix)
    assert json.loads(redis_sync.get(rt.keys.cache_sentinel().name))["reason"] == "manual"
    assert redis_sync.pttl(rt.keys.cache_sentinel().name) == -1  # never expires: its absence means a drop

    rebuilt = design_keys(after, redis_prefix)
    stream = rt.keys.trades_stream().name
    assert {k: v for k, v in rebuilt.items() if k != stream} == {k: v for k, v in before.items() if k != stream}
    # every value carries its class's TTL again
    for name in rebuilt:
        if name != stream:
            assert redis_sync.pttl(name) > 0, name
    assert rt.metrics.registry.get_sample_value("nof0_cache_rebuilds_total", {"reason": "manual", "outcome": "ok"}) == 1


async def test_a_failing_family_leaves_the_others_and_no_sentinel(rt, redis_sync, monkeypatch):
    await ingest_arena(rt)

    async def broken(*_):
        raise RuntimeError("sim_balances unreadable")

    monkeypatch.setitem(FAMILIES, "sim", ((broken,), "sim_traders"))
    for raw in redis_sync.scan_iter(match=f"{rt.keys.prefix}:*"):
        redis_sync.delete(raw)
    report = await rebuild_caches(rt, "manual")
    assert report.status == "partial" and report.failed == {"sim": "RuntimeError: sim_balances unreadable"}
    assert redis_sync.exists(rt.keys.positions("m1").name) and redis_sync.exists(rt.keys.crypto_prices().name)
    assert redis_sync.exists(rt.keys.leaderboard().name)
    assert not redis_sync.exists(rt.keys.cache_sentinel().name)  # the watcher will try again
    assert rt.metrics.registry.get_sample_value(
        "nof0_cache_rebuilds_total", {"reason": "manual", "outcome": "failed"}) == 1


def test_cache_rebuild_command(cli_config, rt, redis_sync, capsys):  # noqa: F811
    assert main(["--config", cli_config, "cache", "rebuild"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cache rebuild ok in ") and "  positions: 0" in out
