"""What every subcommand needs to run, below the command modules and ``cli.py``: open the servers (and
the runtime) for one command, print a result, and refuse bad arguments plainly.

``cli.py`` imports the command modules (``*/commands.py``) to register them; those import this module,
never ``cli.py``, so the command layer has no import cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, Awaitable, Callable

from nof0.config import Config
from nof0.runtime import Runtime, Servers, open_runtime, resolve_servers

__all__ = ["with_runtime", "with_servers", "print_result", "UsageError"]


class UsageError(ValueError):
    """A command's arguments are wrong; ``nof0.cli.main`` prints it as one line, exit code 2."""


def print_result(obj: Any) -> None:
    """A string as is, anything else as indented JSON."""
    print(json.dumps(obj, indent=2, default=str) if not isinstance(obj, str) else obj, flush=True)


def with_runtime(args: argparse.Namespace, fn: Callable[[Runtime], Awaitable[int]], *, migrate: bool = True) -> int:
    """Resolve servers, optionally migrate, open the runtime and run ``fn`` in it."""
    config: Config = args.config_obj
    servers = resolve_servers(config)
    try:
        if migrate:
            from nof0.db.migrate import migrate as apply

            apply(servers.postgres_dsn)

        async def go() -> int:
            async with open_runtime(config, servers) as rt:
                return await fn(rt)

        return asyncio.run(go())
    finally:
        servers.stop()


def with_servers(args: argparse.Namespace, fn: Callable[[Servers], int]) -> int:
    """Resolve servers (embedded ones started and stopped around ``fn``) for commands that need no runtime."""
    servers = resolve_servers(args.config_obj)
    try:
        return fn(servers)
    finally:
        servers.stop()
