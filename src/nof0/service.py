"""The long-running service started by ``nof0 run``: reports readiness, then runs its tasks until stopped.

The scheduler (design 2.3, 2.5), the cache watcher (design 3.4: the cold-start rebuild of the Redis
keyspace and its rebuild after a drop) and the positions re-marking run in the background for the
service's lifetime (roles ``all`` and ``engine``); the API
(``api.server.serve_api``) is a task sharing the ``stop`` event, and more tasks join as one
``tg.create_task(...)`` line each. If a task fails (the API cannot listen), the others are
cancelled, the scheduler stops and the service exits non-zero.

Roles (docs/scaling.md): ``api`` runs the API alone (stateless, any number of them); ``engine`` the
feeds, exchanges, traders and the jobs; ``all`` (the default) both, today's single process.

``/metrics`` (docs/metrics.md): on the API port for ``all`` and ``api``; an ``engine`` process listens on
``api.metrics_port`` for it alone. A metrics port that cannot be bound is logged, and the engine trades on.
"""

from __future__ import annotations

import asyncio
import contextlib

from nof0.api.app import create_app
from nof0.api.metrics_app import create_metrics_app
from nof0.api.server import ApiStartError, api_address, serve_api
from nof0.commands_runtime import UsageError
from nof0.db.migrate import status as migration_status
from nof0.engine.leases import list_live_engines
from nof0.engine.runner import Engine, run_engine, wall_ms
from nof0.jobs.cache_watch import CacheWatch
from nof0.jobs.outbox_publisher import OutboxPublisher
from nof0.jobs.position_marks import PositionMarks
from nof0.jobs.scheduler import Scheduler
from nof0.kernel.waiting import wait_first
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["run_service", "ROLES"]

ROLES = ("all", "api", "engine")

log = get_logger("nof0.service")


async def run_service(rt: Runtime, stop: asyncio.Event, *, host: str | None = None, port: int | None = None,
                      api_started: asyncio.Event | None = None, engine: Engine | None = None,
                      role: str = "all", metrics_port: int | None = None) -> int:
    """Run until ``stop`` is set; ``api_started`` (optional) is set once the API listens. ``engine``
    (default ``Engine(rt)``: a market feed for every provider a trader uses) runs beside the API.
    ``role`` (one of :data:`ROLES`) picks what this process runs; ``metrics_port`` (default
    ``api.metrics_port``) is where an engine-only process answers ``/metrics``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    serves_api, runs_engine = role in ("all", "api"), role in ("all", "engine")
    st = await asyncio.to_thread(migration_status, rt.servers.postgres_dsn)
    await rt.redis.ping()
    log.info("ready", **rt.servers.describe(), migrations=st.applied, embedded=rt.servers.embedded, role=role)
    # a configuration error (api.data_sources, api.file_dir) stops here, plainly
    app = create_app(rt) if serves_api else None
    if runs_engine:
        # engine processes share the traders and feeds through leases; ``all`` runs every one itself
        engine = engine if engine is not None else Engine(rt, shared=role == "engine")  # so does market.yaml
        if not engine.shared and rt.config.manager.traders:
            await _refuse_beside_engines(rt)
    api_host, api_port = api_address(rt, host, port)
    metrics_port = rt.config.root.api.metrics_port if metrics_port is None else metrics_port
    serves_metrics_alone = not serves_api and metrics_port > 0
    banner = (f"nof0 ready ({role}): postgres {rt.servers.describe()['postgres']}, redis {rt.servers.describe()['redis']}"
              f"{' (embedded)' if rt.servers.embedded else ''}; data in {rt.config.data_dir}; "
              + (f"API on http://{api_host}:{api_port}/api; " if serves_api else "no API (engine role); ")
              + (f"metrics on http://{api_host}:{metrics_port}/metrics; " if serves_metrics_alone else "")
              + "Ctrl-C to stop")
    listening = api_started if api_started is not None else asyncio.Event()
    failed: list[Exception] = []
    scheduler: Scheduler | None = None
    async with contextlib.AsyncExitStack() as workers:
        if runs_engine:
            scheduler = await workers.enter_async_context(Scheduler(rt).running())  # jobs (design 2.3, 2.5)
            # every batch the engine commits asks for the view refresh (design 2.3)
            rt.commit_listeners.append(scheduler.on_committed)
            # design 3.4: the cold-start rebuild and the drop watcher; the API answers from Postgres meanwhile
            await workers.enter_async_context(CacheWatch(rt).running())
            await workers.enter_async_context(PositionMarks(rt).running())  # positions hashes follow the prices
        try:
            async with asyncio.TaskGroup() as tg:
                if serves_api:  # the banner says "API on ..." only once the API listens (a URL that answers)
                    tg.create_task(serve_api(rt, stop, host=host, port=port, started=listening, app=app))
                    tg.create_task(_print_when(listening, stop, banner))
                else:
                    print(banner, flush=True)
                if runs_engine:
                    tg.create_task(run_engine(engine, stop))  # feeds, exchanges, traders (engine.md)
                    tg.create_task(OutboxPublisher(rt).run(stop))  # the trades stream's outbox: at start, then retries
                if serves_metrics_alone:
                    tg.create_task(_serve_metrics(rt, stop, api_host, metrics_port))
        except* ApiStartError as group:
            failed.extend(group.exceptions)
        finally:
            if scheduler is not None:
                rt.commit_listeners.remove(scheduler.on_committed)
    for exc in failed:
        print(f"nof0: {exc}", flush=True)
    log.info("stopped")
    return 1 if failed else 0


async def _serve_metrics(rt: Runtime, stop: asyncio.Event, host: str, port: int) -> None:
    try:
        await serve_api(rt, stop, host=host, port=port, app=create_metrics_app(rt), what="metrics endpoint")
    except ApiStartError as exc:  # unmonitored is bad, not trading is worse: say so loudly and go on
        log.error("metrics not served", error=str(exc))
        print(f"nof0: {exc}; the engine runs without /metrics", flush=True)


async def _print_when(listening: asyncio.Event, stop: asyncio.Event, banner: str) -> None:
    """Print ``banner`` when the API listens; give up quietly when the service stops first."""
    await wait_first(listening.wait(), stop.wait())
    if listening.is_set():
        print(banner, flush=True)


async def _refuse_beside_engines(rt: Runtime) -> None:
    """Role ``all`` runs every trader without leases (one process is the whole arena); beside live ``engine``
    processes it would run their traders a second time (two holders, orders sent twice on a real venue)."""
    others = await list_live_engines(rt.redis, rt.keys, wall_ms())
    if others:
        raise UsageError(
            f"{len(others)} engine process(es) already run this arena's traders ({', '.join(sorted(others)[:3])}):"
            " `--role all` would run them a second time; start this process with `--role api`"
            " (or `--role engine` to share the traders), or stop the engine processes first")
