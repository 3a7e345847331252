"""The long-running service started by ``nof0 run``: reports readiness, then runs until stopped.

The API server and the scheduler attach here (issue: API; issue: scheduling).
"""

from __future__ import annotations

import asyncio

from nof0.db.migrate import status as migration_status
from nof0.jobs.scheduler import Scheduler
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["run_service"]

log = get_logger("nof0.service")


async def run_service(rt: Runtime, stop: asyncio.Event, *, host: str | None = None, port: int | None = None) -> int:
    st = await asyncio.to_thread(migration_status, rt.servers.postgres_dsn)
    await rt.redis.ping()
    log.info("ready", **rt.servers.describe(), migrations=st.applied, embedded=rt.servers.embedded)
    print(f"nof0 ready: postgres {rt.servers.describe()['postgres']}, redis {rt.servers.describe()['redis']}"
          f"{' (embedded, data in ' + str(rt.config.data_dir) + ')' if rt.servers.embedded else ''}; "
          "Ctrl-C to stop", flush=True)
    async with Scheduler(rt).running():  # view refresh and analytics jobs (design 2.3, 2.5)
        await stop.wait()
    log.info("stopping")
    return 0
