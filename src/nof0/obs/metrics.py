"""Prometheus metrics of design 4.3, in a registry owned by the runtime (not the global one),
so tests and several runtimes in one process never collide.

* Postgres write latency per pipeline, cache fill latency, Redis hits/misses/errors per endpoint,
  ``refresh_views_nof0()`` runs and durations, ingest outcomes, job runs.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
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
        self.analytics_models = Counter(
            "nof0_analytics_models_total", "Models per analytics run by outcome (computed, skipped_locked, failed)",
            ["outcome"], registry=r,
        )
        self.retention_rows = Counter(
            "nof0_retention_archived_rows_total", "Rows archived to cold storage and deleted by the retention job",
            ["table"], registry=r,
        )
        # market feeds (engine/market): one label value per market.yaml provider
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
