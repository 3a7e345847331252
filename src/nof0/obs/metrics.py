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
        self.job_requests = Counter(
            "nof0_job_requests_total", "Job run requests after ingest batches by outcome (queued, coalesced)",
            ["job", "outcome"], registry=r,
        )
