"""Prometheus metrics of design 4.3, in a registry owned by the runtime (not the global one),
so tests and several runtimes in one process never collide.

* Postgres write latency per pipeline, cache fill latency, Redis hits/misses/errors per endpoint,
  ``refresh_views_nof0()`` runs and durations, ingest outcomes, job runs;
* the engine's parts (engine.md): the market feed (``nof0_market_*``: ticks, lag, reconnects, gaps), the
  traders (cycles, guard rejections, model latency, tokens, cost, errors) and the sim exchange (orders,
  fills, liquidations);
* Postgres and Redis round trips (obs/instrument.py), design key lookups and key counts per pattern.
  They are defined here, once, so every part reports into the one ``/metrics`` of ``nof0 run``.

Label values must stay a small set: model / trader ids, symbols, sources and fixed outcome words,
never free text (an error message belongs in the logs).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "LATENCY_BUCKETS", "MODEL_LATENCY_BUCKETS"]

# Store round trips: sub-millisecond Redis commands up to multi-second Postgres batches.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A model call: seconds to minutes.
MODEL_LATENCY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.keys_sampled_at: float | None = None  # monotonic time of the last SCAN for redis_keys_by_pattern
        self.pg_write_seconds = Histogram(
            "nof0_pg_write_seconds", "Postgres transaction time per pipeline", ["pipeline"], registry=r
        )
        self.cache_fill_seconds = Histogram(
            "nof0_cache_fill_seconds", "Time to rebuild a cache value from Postgres", ["key"], registry=r
        )
        self.cache_requests = Counter(
            "nof0_cache_requests_total", "Redis reads by outcome (hit, miss, error)", ["endpoint", "outcome"], registry=r
        )
        self.redis_write_errors = Counter(
            "nof0_redis_write_errors_total", "Redis writes that failed after commit", ["pipeline"], registry=r
        )
        self.ingest_events = Counter(
            "nof0_ingest_events_total", "Ingested events by type and outcome", ["type", "outcome"], registry=r
        )
        self.ingest_batch_splits = Counter(
            "nof0_ingest_batch_splits_total", "Ingest batches the database refused, retried in halves", registry=r
        )
        self.refresh_views = Counter(
            "nof0_refresh_views_total", "refresh_views_nof0() runs by outcome", ["outcome"], registry=r
        )
        self.job_seconds = Histogram("nof0_job_seconds", "Scheduled job durations", ["job"], registry=r)
        self.job_failures = Counter("nof0_job_failures_total", "Scheduled job failures", ["job"], registry=r)
        # design 4.3 dashboards: table growth and cache key counts, sampled when /metrics is scraped
        self.table_rows = Gauge(
            "nof0_table_rows", "Estimated rows per table (pg_class.reltuples)", ["table"], registry=r
        )
        self.redis_keys = Gauge("nof0_redis_keys", "Keys in the Redis database nof0 uses (DBSIZE)", registry=r)
        self.job_last_success = Gauge(
            "nof0_job_last_success_timestamp", "Unix time of each job's last success", ["job"], registry=r
        )
        self.stream_clients = Gauge("nof0_stream_clients", "Clients connected to /api/stream", registry=r)
        self.stream_dropped = Counter(
            "nof0_stream_dropped_total", "/api/stream clients dropped for reading slower than changes arrive",
            registry=r,
        )
        self.analytics_models = Counter(
            "nof0_analytics_models_total", "Models per analytics run by outcome (computed, skipped_locked, failed)",
            ["outcome"], registry=r,
        )
        self.retention_rows = Counter(
            "nof0_retention_archived_rows_total", "Rows archived to cold storage and deleted by the retention job",
            ["table"], registry=r,
        )
        # market feeds (engine/market): one label value per market.yaml provider
        self.pg_replica_lag = Gauge(
            "nof0_pg_replica_lag_seconds", "Replay lag of the Postgres read replica, last measured", registry=r)
        self.pg_replica_fallbacks = Counter(
            "nof0_pg_replica_fallbacks_total", "API reads sent to the primary: replica down or lagging", ["why"],
            registry=r)
        self.market_ticks = Counter(
            "nof0_market_ticks_total", "Price ticks a market feed wrote through ingest", ["provider"], registry=r
        )
        self.market_lag_seconds = Histogram(
            "nof0_market_lag_seconds", "From a price's observation to its batch's commit", ["provider"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.market_reconnects = Counter(
            "nof0_market_reconnects_total", "WebSocket connections replaced, by reason (dropped, silent, closed,"
            " connect_failed)", ["provider", "reason"], registry=r,
        )
        self.market_gaps = Counter(
            "nof0_market_gaps_total", "Gaps filled by REST after a reconnect", ["provider"], registry=r
        )
        self.market_skipped = Counter(
            "nof0_market_skipped_total", "Venue data left out, by reason (malformed_frame, malformed_entry, bad_price,"
            " unknown_symbol, venue_error)", ["provider", "reason"], registry=r,
        )
        self.market_stale = Counter(
            "nof0_market_stale_total", "Times a feed went without a price update longer than stale_after",
            ["provider"], registry=r,
        )
        self.market_errors = Counter(
            "nof0_market_errors_total", "Feed operations that failed (snapshot, write, stream, retry)",
            ["provider", "operation"], registry=r,
        )
        self.market_last_tick = Gauge(
            "nof0_market_last_tick_timestamp", "Unix time of the newest price a feed wrote", ["provider"], registry=r
        )
        self.job_requests = Counter(
            "nof0_job_requests_total", "Job run requests after ingest batches by outcome (queued, coalesced)",
            ["job", "outcome"], registry=r,
        )

        # -- store latency and the cache (design 4.3 "write latency", "Redis hit ratio", "key counts")
        self.pg_seconds = Histogram(
            "nof0_pg_seconds", "Postgres round trip time by operation", ["op"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.redis_seconds = Histogram(
            "nof0_redis_seconds", "Redis round trip time by operation", ["op"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.cache_lookups = Counter(
            "nof0_cache_lookups_total", "Reads of design keys by key family (cache/keys.py pattern) and outcome"
            " (hit, miss, error)", ["family", "outcome"], registry=r,
        )
        self.redis_keys_by_pattern = Gauge(
            "nof0_redis_keys_by_pattern", "Keys per design key pattern (cache/keys.py), sampled by SCAN",
            ["pattern"], registry=r,
        )
        self.cache_rebuilds = Counter(
            "nof0_cache_rebuilds_total", "Rebuilds of the design keys from Postgres by reason (start, dropped, manual,"
            " restore) and outcome (ok, failed)", ["reason", "outcome"], registry=r,
        )
        self.cache_rebuild_seconds = Histogram(
            "nof0_cache_rebuild_seconds", "Time to rebuild every design key from Postgres", registry=r
        )
        self.outbox_published = Counter(
            "nof0_outbox_published_total", "Outbox entries published to their stream by outcome (added, duplicate)",
            ["stream", "outcome"], registry=r,
        )
        self.outbox_pending = Gauge(
            "nof0_outbox_pending", "Outbox entries committed but not yet published", ["stream"], registry=r
        )

        # -- the traders (engine.md "manager", "executor")
        self.trader_cycles = Counter(
            "nof0_trader_cycles_total", "Decision cycles per trader by outcome (ok, skipped, failed)",
            ["trader", "outcome"], registry=r,
        )
        self.trader_guard_rejections = Counter(
            "nof0_trader_guard_rejections_total", "Decisions refused by a risk guard, per trader and guard",
            ["trader", "guard"], registry=r,
        )
        self.trader_model_seconds = Histogram(
            "nof0_trader_model_seconds", "Model (LLM) call latency per trader and model",
            ["trader", "model"], buckets=MODEL_LATENCY_BUCKETS, registry=r,
        )
        self.trader_tokens = Counter(
            "nof0_trader_tokens_total", "Model tokens per trader and kind (prompt, completion)",
            ["trader", "kind"], registry=r,
        )
        self.trader_cost_usd = Counter(
            "nof0_trader_cost_usd_total", "Model cost in US dollars per trader", ["trader"], registry=r
        )
        self.trader_errors = Counter(
            "nof0_trader_errors_total", "Trader errors per trader and kind (cycle: the cycle raised, model: no reply,"
            " parse: the reply broke the decision contract, exchange: an order failed)",
            ["trader", "kind"], registry=r,
        )

        # -- the sim exchange (engine.md "exchange provider", sim)
        self.sim_orders = Counter(
            "nof0_sim_orders_total", "Sim exchange orders per trader by outcome: the order's state once placed"
            " (filled, open, rejected, canceled), or canceled for a cancel request that took effect",
            ["trader", "outcome"], registry=r,
        )
        self.sim_fills = Counter(
            "nof0_sim_fills_total", "Sim exchange fills per trader and symbol", ["trader", "symbol"], registry=r
        )
        self.sim_liquidations = Counter(
            "nof0_sim_liquidations_total", "Sim exchange liquidations per trader and symbol", ["trader", "symbol"],
            registry=r,
        )
