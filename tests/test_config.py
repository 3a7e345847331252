"""Configuration chain: shipped examples, ${VAR} expansion, errors naming file and key path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nof0.config import ConfigError, load_config, parse_duration
from tests.conftest import ETC


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    d = tmp_path / "etc"
    shutil.copytree(ETC.parent, d)
    return d


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_shipped_configuration_loads():
    cfg = load_config(ETC, env={})
    assert (cfg.ttl.short, cfg.ttl.medium, cfg.ttl.long) == (10, 60, 300)
    assert [t.id for t in cfg.manager.traders] == ["trader_aggressive_short", "trader_conservative_long",
                                                   "trader_swing_momentum"]
    # offline by default: every shipped trader runs a built-in strategy on the sim market and exchange
    assert {(t.model.split(":")[0], t.market_provider, t.exchange_provider) for t in cfg.manager.traders} == {
        ("strategy", "sim", "sim")}
    assert set(cfg.exchange.providers) == {"hyperliquid", "hyperliquid_testnet", "sim"}
    assert cfg.exchange.providers["sim"].type == "sim"
    assert cfg.root.api.port == 8888 and cfg.root.postgres.dsn == ""
    assert cfg.llm.models and cfg.executor.allowed_symbols and cfg.market.providers


def test_variables_and_defaults_expand_before_validation():
    cfg = load_config(ETC, env={"NOF0_API_PORT": "9999", "NOF0_DATA_DIR": "/srv/nof0"})
    assert cfg.root.api.port == 9999
    assert cfg.data_dir == Path("/srv/nof0")
    assert load_config(ETC, env={}).root.api.port == 8888


def test_server_overrides():
    cfg = load_config(ETC, env={"NOF0_POSTGRES_DSN": "postgresql://u@h/db", "NOF0_REDIS_URL": "redis://h:1/0"})
    assert cfg.root.postgres.dsn == "postgresql://u@h/db"
    assert cfg.root.redis.url == "redis://h:1/0"


def test_ttl_classes_are_configurable(etc):
    _edit(etc / "nof0.yaml", "short: 10s", "short: 2500ms")
    _edit(etc / "nof0.yaml", "long: 300s", "long: 10m")
    cfg = load_config(etc / "nof0.yaml", env={})
    assert cfg.ttl.millis("short") == 2500 and cfg.ttl.seconds("long") == 600


def test_missing_variable_names_file_and_key(etc):
    _edit(etc / "llm.yaml", "${NOF0_LLM_API_KEY:-}", "${SOME_UNSET_KEY}")
    with pytest.raises(ConfigError) as err:
        load_config(etc / "nof0.yaml", env={})
    assert err.value.file.endswith("llm.yaml")
    assert err.value.path == "api_key"
    assert "SOME_UNSET_KEY" in str(err.value)


def test_unknown_key_names_file_and_path(etc):
    _edit(etc / "manager.yaml", "max_positions: 2", "max_positions: 2\n      max_posiitons: 3")
    with pytest.raises(ConfigError) as err:
        load_config(etc / "nof0.yaml", env={})
    assert err.value.file.endswith("manager.yaml")
    assert err.value.path == "traders[1].risk_params.max_posiitons"
    assert "unknown key" in str(err.value)


def test_wrong_type_names_file_and_path(etc):
    _edit(etc / "nof0.yaml", "pool_max: 10", "pool_max: lots")
    with pytest.raises(ConfigError) as err:
        load_config(etc / "nof0.yaml", env={})
    assert err.value.file.endswith("nof0.yaml") and err.value.path == "postgres.pool_max"
    assert "int" in err.value.message


def test_bad_duration(etc):
    _edit(etc / "nof0.yaml", "medium: 60s", "medium: soon")
    with pytest.raises(ConfigError) as err:
        load_config(etc / "nof0.yaml", env={})
    assert err.value.path == "ttl.medium" and "duration" in err.value.message


def test_unknown_provider_names_trader(etc):
    _edit(etc / "manager.yaml", "exchange_provider: sim", "exchange_provider: binance")
    with pytest.raises(ConfigError) as err:
        load_config(etc / "nof0.yaml", env={})
    assert err.value.path == "traders[0].exchange_provider"
    assert "trader_aggressive_short" in str(err.value) and "binance" in str(err.value)


def test_unknown_endpoint_in_data_sources(etc):
    _edit(etc / "nof0.yaml", "data_sources: {}", "data_sources: {tradez: file}")
    with pytest.raises(ConfigError, match="api.data_sources.tradez: unknown endpoint"):
        load_config(etc / "nof0.yaml", env={})


def test_missing_subsystem_file(etc):
    (etc / "market.yaml").unlink()
    with pytest.raises(ConfigError, match="market.yaml: file not found"):
        load_config(etc / "nof0.yaml", env={})


def test_config_flag_picks_another_manifest(etc, capsys):
    from nof0.cli import main

    _edit(etc / "nof0.yaml", "pool_max: 10", "pool_max: [1]")
    assert main(["--config", str(etc / "nof0.yaml"), "db", "status"]) == 2
    assert "postgres.pool_max" in capsys.readouterr().err


@pytest.mark.parametrize("text,seconds", [(10, 10), ("10s", 10), ("500ms", 0.5), ("5m", 300), ("24h", 86400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "ten", "-5s", 0, True])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("file,old,new,path", [
    ("nof0.yaml", "tick_batch_size: 5000", "tick_batch_size: 0", "ingest.tick_batch_size"),
    ("nof0.yaml", "conversation_window: 100", "conversation_window: -1", "ingest.conversation_window"),
    ("nof0.yaml", "pool_max: 10", "pool_max: 0", "postgres.pool_max"),
    ("nof0.yaml", "pool_min: 1", "pool_min: 20", "postgres.pool_min"),
    ("nof0.yaml", "short: 10s", "short: .inf", "ttl.short"),
    ("nof0.yaml", "short: 10s", "short: .nan", "ttl.short"),
    ("nof0.yaml", "lock: 5s", "lock: 0.0001s", "ttl.lock"),
    ("nof0.yaml", "prefix: nof0", 'prefix: "my app"', "redis.prefix"),
    ("nof0.yaml", "port: ${NOF0_API_PORT:-8888}", "port: 70000", "api.port"),
    ("nof0.yaml", "price_ticks_days: 30", "price_ticks_days: -1", "jobs.retention.price_ticks_days"),
    ("nof0.yaml", "batch_rows: 50000", "batch_rows: 0", "jobs.retention.batch_rows"),
    ("nof0.yaml", "max_batches_per_run: 20", "max_batches_per_run: 20\n    keep_forever: true",
     "jobs.retention.keep_forever"),
    ("manager.yaml", "allocation_pct: 33", "allocation_pct: 150", "traders[0].allocation_pct"),
    ("manager.yaml", "starting_capital_usd: 10000", "starting_capital_usd: 0", "traders[0].starting_capital_usd"),
    ("manager.yaml", "id: trader_aggressive_short", "id: trader aggressive", "traders[0].id"),
    ("manager.yaml", "min_confidence: 0.6", "min_confidence: 75", "traders[0].risk_params.min_confidence"),
    ("manager.yaml", "model: strategy:mean_reversion", "model: gpt-9", "traders[0].model"),
    ("manager.yaml", "after_close: 30s", "after_close: soon", "traders[0].cooldown.after_close"),
    ("manager.yaml", "after_close: 30s", "after_close: 30s\n      after_win: 1m", "traders[0].cooldown.after_win"),
])
def test_out_of_range_values_name_file_and_key(etc, file, old, new, path):
    _edit(etc / file, old, new)
    with pytest.raises(ConfigError) as err:
        load_config(etc / "nof0.yaml", env={})
    assert err.value.file.endswith(file) and err.value.path == path, str(err.value)


# ------------------------------------------------------------------ DSNs and paths (issue 8)

SECRET = "hunter 2x"  # a password a DSN must never show, whole or in part
BAD_DSNS = [
    f"postgresql://nof0:{SECRET}@127.0.0.1:5432/nof0",  # libpq: unexpected spaces found in "<password>"
    "postgresql://nof0:hunter%zz2x@127.0.0.1:5432/nof0",  # invalid percent-encoded token: "<password>"
    f"postgresql://nof0@127.0.0.1:5432/nof0?password={SECRET}",
    "postgresql://nof0:hunter2x@127.0.0.1:99999/nof0",  # port out of range
    f"postgresql://nof0:{SECRET}@[::1/nof0",
    f"host=127.0.0.1 user=nof0 password={SECRET}",  # not a URI (libpq would quote a piece of it)
    "mysql://nof0:hunter2x@127.0.0.1/nof0",
]


def _no_secret(text: str) -> None:
    for piece in ("hunter", "2x", "%zz"):
        assert piece not in text, text


@pytest.mark.parametrize("dsn", BAD_DSNS)
def test_a_malformed_dsn_is_one_line_naming_the_key_without_the_password(dsn, etc):
    with pytest.raises(ConfigError) as from_env:
        load_config(etc / "nof0.yaml", env={"NOF0_POSTGRES_DSN": dsn})
    assert from_env.value.path == "postgres.dsn (from NOF0_POSTGRES_DSN)"
    _edit(etc / "nof0.yaml", 'dsn: ""', f"dsn: '{dsn}'")
    with pytest.raises(ConfigError) as from_file:
        load_config(etc / "nof0.yaml", env={})
    assert from_file.value.path == "postgres.dsn" and from_file.value.file.endswith("nof0.yaml")
    for err in (from_env.value, from_file.value):
        assert "\n" not in str(err)
        _no_secret(str(err))


def test_the_cli_says_so_in_one_line_without_a_traceback(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("NOF0_")}
    env.update(NOF0_POSTGRES_DSN=BAD_DSNS[0], NOF0_REDIS_URL="redis://127.0.0.1:1/0")
    for command in (["migrate"], ["db", "status"], ["doctor"]):
        run = subprocess.run([sys.executable, "-c", "from nof0.cli import main; raise SystemExit(main())",
                              "--config", str(ETC), *command], env=env, capture_output=True, text=True,
                             cwd=tmp_path, timeout=60)
        assert run.returncode == 2 and run.stdout == "", (command, run)
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
        assert run.stderr.startswith("configuration error: ") and "postgres.dsn" in run.stderr
        _no_secret(run.stderr)


def test_relative_paths_are_relative_to_the_manifest_folder_not_the_working_folder(etc, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(etc / "nof0.yaml", env={})
    assert cfg.data_dir == tmp_path / "var"  # the shipped ../var: next to etc/, wherever nof0 runs
    assert cfg.archive_dir == tmp_path / "var" / "archive"
    cfg = load_config(etc / "nof0.yaml", env={"NOF0_DATA_DIR": "data", "NOF0_ARCHIVE_DIR": "../cold"})
    assert (cfg.data_dir, cfg.archive_dir) == (etc / "data", tmp_path / "cold")
    assert load_config(etc / "nof0.yaml", env={"NOF0_DATA_DIR": "/srv/nof0"}).data_dir == Path("/srv/nof0")
    assert load_config(ETC, env={}).data_dir == ETC.parent.parent / "var"  # the repository's var/
