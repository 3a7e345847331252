"""The long-running service started by ``nof0 run``: reports readiness, then runs its tasks until stopped.

The scheduler (design 2.3, 2.5) runs in the background for the service's lifetime; the API
(``api.server.serve_api``) is a task sharing the ``stop`` event, and more tasks join as one
``tg.create_task(...)`` line each. If a task fails (the API cannot listen), the others are
cancelled, the scheduler stops and the service exits non-zero.
"""

from __future__ import annotations

import asyncio

from nof0.api.app import create_app
from nof0.api.server import ApiStartError, api_address, serve_api
from nof0.db.migrate import status as migration_status
from nof0.engine.runner import Engine, run_engine
from nof0.jobs.scheduler import Scheduler
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["run_service"]

log = get_logger("nof0.service")


async def run_service(rt: Runtime, stop: asyncio.Event, *, host: str | None = None, port: int | None = None,
                      api_started: asyncio.Event | None = None, engine: Engine | None = None) -> int:
    """Run until ``stop`` is set; ``api_started`` (optional) is set once the API listens. ``engine``
    (default ``Engine(rt)``: a market feed for every provider a trader uses) runs beside the API."""
    st = await asyncio.to_thread(migration_status, rt.servers.postgres_dsn)
    await rt.redis.ping()
    log.info("ready", **rt.servers.describe(), migrations=st.applied, embedded=rt.servers.embedded)
    app = create_app(rt)  # a configuration error (api.data_sources, api.file_dir) stops here, plainly
    engine = engine if engine is not None else Engine(rt)  # so does one of market.yaml
    api_host, api_port = api_address(rt, host, port)
    print(f"nof0 ready: postgres {rt.servers.describe()['postgres']}, redis {rt.servers.describe()['redis']}"
          f"{' (embedded)' if rt.servers.embedded else ''}; data in {rt.config.data_dir}; "
          f"API on http://{api_host}:{api_port}/api; Ctrl-C to stop", flush=True)
    failed: list[Exception] = []
    async with Scheduler(rt).running():  # view refresh and analytics jobs (design 2.3, 2.5)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(serve_api(rt, stop, host=host, port=port, started=api_started, app=app))
                tg.create_task(run_engine(engine, stop))  # market feeds (engine.md), later exchanges and traders
        except* ApiStartError as group:
            failed.extend(group.exceptions)
    for exc in failed:
        print(f"nof0: {exc}", flush=True)
    log.info("stopped")
    return 1 if failed else 0
