"""A scripted ingest session, run as a subprocess by the outbox's kill -9 test (``test_outbox_kill9.py``).

``python -m tests.trades.outbox_session DSN REDIS_URL PREFIX [--from N] [--die before-xadd|after-xadd --at K]``
publishes what the outbox holds (what ``nof0 run`` does at start), then ingests the batches N.. of
:func:`batches` in order, printing ``committed <n>`` once batch n's ingest returned. ``--die`` makes the
process SIGKILL itself inside the K-th publication: ``before-xadd`` after the batch committed and before
any XADD, ``after-xadd`` after the XADDs and before the watermark is raised. A restart resumes at
the first batch not acknowledged: redoing a batch that had committed changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from nof0.ingest.service import IngestService
from nof0.runtime import Servers, open_runtime
from nof0.trades import outbox
from tests.conftest import make_config
from tests.ingest import factories as f

BATCHES = 6


def batches() -> list[list]:
    """Batch n adds trade t<n> (models m1, m2 in turn) and changes the PnL of t<n-1>: ops add, update."""
    out: list[list] = [[f.model("m1"), f.model("m2"), f.symbol("BTC")]]
    for n in range(1, BATCHES + 1):
        batch = [f.trade(f"t{n}", model_id=f"m{n % 2 + 1}", dt=n)]
        if n > 1:
            batch.append(f.trade(f"t{n - 1}", model_id=f"m{(n - 1) % 2 + 1}", dt=n - 1, realized_net_pnl=float(n)))
        out.append(batch)
    return out


def expected_ops() -> list[tuple[str, str]]:
    ops: list[tuple[str, str]] = []
    for n in range(1, BATCHES + 1):
        ops.append(("add", f"t{n}"))
        if n > 1:
            ops.append(("update", f"t{n - 1}"))
    return ops


async def run(args: argparse.Namespace) -> None:
    config = make_config(args.dsn, args.redis, args.prefix)
    async with open_runtime(config, Servers(args.dsn, args.redis)) as rt:
        async with rt.pool.connection() as conn:
            await outbox.publish_pending(rt, conn)  # the process start
        if args.die:
            real = outbox._add_to_stream
            calls = 0

            async def dying(*a):
                nonlocal calls
                calls += 1
                if calls >= args.at and args.die == "before-xadd":
                    os.kill(os.getpid(), signal.SIGKILL)
                result = await real(*a)
                if calls >= args.at and args.die == "after-xadd":
                    os.kill(os.getpid(), signal.SIGKILL)
                return result

            outbox._add_to_stream = dying  # the test's kill point; the module itself has no hook
        service = IngestService(rt)
        for n, batch in enumerate(batches()):
            if n < args.start:
                continue
            await service.ingest(batch)
            print(f"committed {n}", flush=True)
        print("done", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dsn")
    p.add_argument("redis")
    p.add_argument("prefix")
    p.add_argument("--from", dest="start", type=int, default=0)
    p.add_argument("--die", choices=["before-xadd", "after-xadd"])
    p.add_argument("--at", type=int, default=1)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
