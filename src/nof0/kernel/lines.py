"""JSON Lines as they are read from a file or a pipe, with a bound on a line's length (issue 3 "Bad input").

A line longer than ``max_bytes`` is never held in memory: the reader keeps its first bytes and the md5
of the whole, skips to the next newline and hands over an :class:`OverlongLine`, which the ingestion
service rejects ("line longer than N bytes") like any other bad line; the lines after it are read as
usual.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["MAX_LINE_BYTES", "HEAD_BYTES", "OverlongLine", "LineSplitter", "file_lines", "pipe_lines"]

MAX_LINE_BYTES = 16 * 1024 * 1024  # the longest event line accepted (a message's text is at most 1M characters)
HEAD_BYTES = 64 * 1024  # what is kept of a text too long to keep whole (dead letters)
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class OverlongLine:
    """A line beyond the limit: its length, its first :data:`HEAD_BYTES` bytes, the md5 of all of it."""

    length: int
    head: bytes
    md5: str
    limit: int


class _Skipping:
    def __init__(self, start: bytes) -> None:
        self.head = start[:HEAD_BYTES]
        self.md5 = hashlib.md5(start)
        self.length = len(start)

    def add(self, piece: bytes) -> None:
        if len(self.head) < HEAD_BYTES:
            self.head += piece[: HEAD_BYTES - len(self.head)]
        self.md5.update(piece)
        self.length += len(piece)


class LineSplitter:
    """Bytes in, lines out (without their newline): ``feed`` chunks as they come, ``close`` at the end."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pending: list[bytes] = []  # the start of the current line, when it is within the limit
        self._size = 0
        self._skipping: _Skipping | None = None  # the current line, once it is over the limit

    def feed(self, chunk: bytes) -> list[bytes | OverlongLine]:
        out: list[bytes | OverlongLine] = []
        parts = chunk.split(b"\n")
        for i, part in enumerate(parts):
            complete = i < len(parts) - 1
            if not self._pending and self._skipping is None and complete and len(part) <= self.max_bytes:
                out.append(part)  # the common case: a whole line inside the chunk
                continue
            self._add(part)
            if complete:
                out.append(self._finish())
        return out

    def close(self) -> list[bytes | OverlongLine]:
        """The last line when the input does not end with a newline."""
        return [self._finish()] if self._pending or self._skipping is not None else []

    def _add(self, part: bytes) -> None:
        if self._skipping is not None:
            self._skipping.add(part)
        elif self._size + len(part) > self.max_bytes:
            self._skipping = _Skipping(b"".join(self._pending))
            self._skipping.add(part)
            self._pending, self._size = [], 0
        elif part:
            self._pending.append(part)
            self._size += len(part)

    def _finish(self) -> bytes | OverlongLine:
        if self._skipping is not None:
            s, self._skipping = self._skipping, None
            return OverlongLine(s.length, s.head, s.md5.hexdigest(), self.max_bytes)
        line = b"".join(self._pending)
        self._pending, self._size = [], 0
        return line


def file_lines(f: BinaryIO, max_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes | OverlongLine]:
    splitter = LineSplitter(max_bytes)
    while chunk := f.read(_CHUNK):
        yield from splitter.feed(chunk)
    yield from splitter.close()


async def pipe_lines(f: BinaryIO, max_bytes: int = MAX_LINE_BYTES) -> AsyncIterator[bytes | OverlongLine]:
    """A live pipe read without blocking the event loop (batches flush while the producer is quiet)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_CHUNK)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), f)
    splitter = LineSplitter(max_bytes)
    while chunk := await reader.read(_CHUNK):
        for line in splitter.feed(chunk):
            yield line
    for line in splitter.close():
        yield line
