"""Cold storage of the retention job (design 2.5 "Archival"): one gzip'd CSV file per archived batch.

A file becomes visible under its final name only once it is complete and on disk: it is written to a
temporary name in the same folder, flushed and fsync'd, closed, renamed, and the folder is fsync'd.
The retention job deletes the rows only after that, so an interrupted run leaves either no file or a
complete one, never a partial file with its rows gone. The gzip header carries no timestamp, so the
same rows give the same bytes (a batch archived again after a rollback replaces its file with an
identical one).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, BinaryIO

__all__ = ["ArchiveFile", "open_archive", "archive_path", "month_archive_path"]

_FLUSH_BYTES = 1 << 20  # compress and write in ~1 MB steps, off the event loop


def archive_path(archive_dir: Path, table: str, first_id: int, last_id: int) -> Path:
    """``<archive_dir>/<table>/<table>-<first id>-<last id>.csv.gz``."""
    return archive_dir / table / f"{table}-{first_id}-{last_id}.csv.gz"


def month_archive_path(archive_dir: Path, table: str, partition: str) -> Path:
    """``<archive_dir>/<table>/<partition>.csv.gz``: one file per archived month (``price_ticks_p2026_09``)."""
    return archive_dir / table / f"{partition}.csv.gz"


class ArchiveFile:
    def __init__(self, raw: BinaryIO, tmp: Path, final: Path) -> None:
        self._raw, self._tmp, self.path = raw, tmp, final
        self._gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)
        self._buf = bytearray()
        self.bytes_in = 0

    async def write(self, chunk: bytes) -> None:
        self._buf += chunk
        self.bytes_in += len(chunk)
        if len(self._buf) >= _FLUSH_BYTES:
            await self._drain()

    async def _drain(self) -> None:
        data, self._buf = bytes(self._buf), bytearray()
        await asyncio.to_thread(self._gz.write, data)

    async def _commit(self) -> None:
        await self._drain()
        await asyncio.to_thread(self._finish)

    def _finish(self) -> None:
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._tmp, self.path)
        _fsync_dir(self.path.parent)  # the rename itself must survive a crash

    def _abort(self) -> None:
        for f in (self._gz, self._raw):
            try:
                f.close()
            except OSError:
                pass
        self._tmp.unlink(missing_ok=True)


@asynccontextmanager
async def open_archive(path: Path) -> AsyncIterator[ArchiveFile]:
    """Write ``path`` atomically: complete and fsync'd when the block ends, absent if it raises."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    raw = await asyncio.to_thread(_create, tmp)
    archive = ArchiveFile(raw, tmp, path)
    try:
        yield archive
        await archive._commit()
    except BaseException:
        await asyncio.to_thread(archive._abort)
        raise


def _create(tmp: Path) -> BinaryIO:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return open(tmp, "xb")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
