"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: Postgres and Redis reachable,
migrations current). Readiness is what a load balancer or ``nof0 run``'s supervisor should poll.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nof0.api import repository as repo
from nof0.db.migrate import status as migration_status
from nof0.runtime import Runtime

__all__ = ["readiness"]

_TIMEOUT_S = 3.0


async def readiness(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    """(ready, body). Each check runs with a timeout; every failure is named in ``reason``."""
    checks: dict[str, str] = {}
    problems: list[str] = []

    async def check(name: str, probe: Any) -> None:
        try:
            checks[name] = await asyncio.wait_for(probe(), _TIMEOUT_S) or "ok"
        except Exception as exc:  # report any failure: this is the diagnostic
            detail = str(exc) or type(exc).__name__
            checks[name] = "failed"
            problems.append(f"{name}: {detail}")

    async def postgres() -> None:
        async with rt.pool.connection(timeout=_TIMEOUT_S) as conn, conn.transaction():
            await repo.ping(conn)

    async def redis() -> None:
        await rt.redis.ping()

    async def migrations() -> str:
        st = await asyncio.to_thread(migration_status, rt.servers.postgres_dsn)
        if not st.current:
            raise RuntimeError(f"pending {', '.join(st.pending)} (run `nof0 migrate`)")
        return "current"

    await asyncio.gather(check("postgres", postgres), check("redis", redis), check("migrations", migrations))
    if problems:
        return False, {"status": "unavailable", "reason": "; ".join(problems), "checks": checks}
    return True, {"status": "ready", "checks": checks}
