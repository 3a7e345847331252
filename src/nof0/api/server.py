"""Runs the API inside an existing event loop (``nof0 serve``, and ``nof0 run`` beside other tasks).

uvicorn serves ``create_app(rt)`` with the protocol of ``wire.py`` (cached payloads answered in the
parser, everything else through Starlette); the caller owns the process signals and asks the server to stop by
setting ``stop``. uvicorn's own signal capture is disabled so several tasks can share one stop event.
The app's lifespan runs with the server: it is where the API listens to the changes writers announce.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Iterator

import uvicorn

from nof0.api.app import create_app
from nof0.api.wire import hot_protocol
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["serve_api", "api_address", "ApiStartError"]

log = get_logger("nof0.api.server")


class ApiStartError(RuntimeError):
    """The API could not listen (address in use, permission denied)."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the caller owns SIGINT/SIGTERM and sets the stop event


def api_address(rt: Runtime, host: str | None, port: int | None) -> tuple[str, int]:
    api = rt.config.root.api
    return host or api.host, api.port if port is None else port


async def serve_api(rt: Runtime, stop: asyncio.Event, *, host: str | None = None, port: int | None = None,
                    started: asyncio.Event | None = None, app: Any = None, what: str = "API") -> None:
    """Serve ``app`` (default ``create_app(rt)``) until ``stop`` is set; ``started`` is set once the
    socket listens. Build the app first to surface configuration errors before other tasks start."""
    host, port = api_address(rt, host, port)
    app = app if app is not None else create_app(rt)
    # another ASGI app (a wrapper, a test's) gets plain httptools: the hot path answers for the arena app only
    http: Any = "httptools"
    if getattr(app, "hot_state", None) is not None:  # an ArenaApp (create_app)
        http = app.state.http_protocol = hot_protocol(app.hot_state)
    server = _Server(uvicorn.Config(
        app, host=host, port=port, http=http, lifespan="auto", log_config=None, access_log=False,
        server_header=False, proxy_headers=False,  # the API answers the same whoever asks
    ))

    async def watch() -> None:
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.05)
        if server.started:
            log.info(f"{what.lower()} listening", url=f"http://{host}:{port}")
            if started is not None:
                started.set()
        await stop.wait()
        close_streams = getattr(app, "close_streams", None)
        if close_streams is not None:
            close_streams()  # open /api/stream responses end, or the shutdown would wait for them
        server.should_exit = True

    watcher = asyncio.create_task(watch())
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits the process when it cannot bind; a task must not
        raise ApiStartError(f"the {what} cannot listen on {host}:{port} (address in use or not permitted)") from None
    finally:
        watcher.cancel()
