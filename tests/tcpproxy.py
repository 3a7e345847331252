"""A TCP proxy the tests start in front of a real server and cut to make a real outage.

``cut()`` closes every connection through it and stops listening (new connections are refused, as
from a stopped server); ``restore()`` listens on the same port again. The server behind it never
stops, so other tests sharing it are unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib

from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

__all__ = ["TcpProxy", "through_proxy", "upstream_of"]


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self.accepted = 0  # connections accepted so far: each is a connection attempt that got through

    async def start(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                up_reader, up_writer = await self._open_upstream()
            except OSError:
                writer.transport.abort()
                return
            self._writers.update((writer, up_writer))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            self._writers.difference_update((writer, up_writer))
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.target
        if host.startswith("/"):  # a Unix socket folder (the embedded server)
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()


def through_proxy(dsn: str, proxy: TcpProxy) -> str:
    """The same user and database, connecting through ``proxy`` (a postgresql:// URI, as nof0 takes)."""
    params = conninfo_to_dict(dsn)
    user = quote(str(params.get("user") or "postgres"), safe="")
    password = f":{quote(str(params['password']), safe='')}" if params.get("password") else ""
    return f"postgresql://{user}{password}@127.0.0.1:{proxy.port}/{quote(str(params.get('dbname') or 'postgres'))}"


def upstream_of(dsn: str) -> tuple[str, int]:
    params = conninfo_to_dict(dsn)
    host = params.get("host") or "/tmp"
    return host.split(",")[0], int(str(params.get("port") or 5432).split(",")[0])
