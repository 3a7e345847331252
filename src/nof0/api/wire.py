"""The HTTP/1.1 protocol of the API: uvicorn's httptools protocol, answering cached payloads in the parser.

A GET or HEAD of a whole endpoint whose payload this process confirmed less than
``read_path.LOCAL_FRESH_MS`` ago is answered inside the parser's headers-complete callback: one
``transport.write`` of prebuilt bytes (status line, uvicorn's ``date`` header, the payload's headers,
body), kept on the payload per representation and rebuilt when the date changes (once a second). No
ASGI task, scope, receive/send messages or header list is made per request; that work was about half of
a small response's cost under uvicorn (bench/README.md has the profile and the servers measured).

Anything else goes on to uvicorn and the Starlette app unchanged: other paths, a payload that is not
held or needs Redis asked (``fast.py`` then refreshes it), a query on an endpoint with parameters, an
``Origin`` header (CORS), a request body, ``Expect``, an upgrade, HTTP/1.0 or ``Connection: close``, a
request pipelined behind one still being answered, a transport whose writes are paused. Both ways write
the same bytes (``tests/api/test_api_wire.py``): headers and body come from ``responses.payload_parts``,
the framing is uvicorn's.

A large response (``SENDFILE_MIN_BYTES``, e.g. ``/api/trades``) is also kept in a memfd and sent with
``sendfile`` when the transport has nothing buffered: the kernel takes the pages as they are instead of
copying 200 KB from the process per request (the largest cost of that endpoint in the profile,
bench/README.md); what the socket does not take at once goes through the transport as usual. The memfd
of a version is closed when its date-stamped bytes are rebuilt or its payload is dropped.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from nof0.api.responses import payload_parts
from nof0.api.spec import ALL_SPECS
from nof0.api.state import ApiState

__all__ = ["HotPath", "hot_protocol", "SENDFILE_MIN_BYTES"]

Headers = list[tuple[bytes, bytes]]

# a request carrying any of these is not a plain GET: uvicorn handles it
_PASS_HEADERS = frozenset({b"origin", b"content-length", b"transfer-encoding", b"expect", b"upgrade"})

SENDFILE_MIN_BYTES = 64 * 1024  # below this one write costs less than the memfd and the sendfile call
_MEMFD = getattr(os, "memfd_create", None)  # Linux; elsewhere every response is written


def _memfd(data: bytes) -> int:
    """A memfd holding ``data`` (-1 when there is no memfd or it cannot be made)."""
    if _MEMFD is None or len(data) < SENDFILE_MIN_BYTES:
        return -1
    try:
        fd = _MEMFD("nof0-response", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return -1
    try:
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(fd, view[written:])
    except OSError:
        os.close(fd)
        return -1
    return fd


def _close_files(wire: dict[Any, tuple[Any, bytes, int]]) -> None:
    for _date, _data, fd in wire.values():
        if fd >= 0:
            os.close(fd)


class HotPath:
    """Decides whether a parsed request is a cached whole-endpoint read and builds its bytes."""

    def __init__(self, state: ApiState) -> None:
        self.state = state
        self.paths = {spec.path.encode(): name for name, spec in ALL_SPECS.items()}
        self.parameterised = {name for name, spec in ALL_SPECS.items() if spec.parameters}
        self.max_age = {name: state.max_age(name) for name in ALL_SPECS}
        self.served = 0  # requests answered here (tests and the benchmark read it)
        self.sent_from_file = 0  # of which sent with sendfile

    def answer(self, method: bytes, url: bytes, headers: Headers, date_headers: Headers
               ) -> tuple[Any, bytes, int] | None:
        """The whole response to write (``(date headers, bytes, memfd or -1)``), or None when the request must
        go through the ASGI app."""
        if method != b"GET" and method != b"HEAD":
            return None
        path, _, query = url.partition(b"?")
        name = self.paths.get(path)  # an exact match: no '%', no absolute form, no fragment
        if name is None or (query and name in self.parameterised):
            return None
        accept = inm = None
        for key, value in headers:
            if key == b"accept-encoding":
                accept = value.decode("latin-1")
            elif key == b"if-none-match":
                inm = value.decode("latin-1")
            elif key in _PASS_HEADERS:
                return None
        if b"#" in query:
            return None
        payload = self.state.peek(name)
        if payload is None:
            return None
        head = method == b"HEAD"
        max_age = self.max_age[name]
        status, response_headers, body = payload_parts(payload, max_age, accept, inm, head)
        rep = (status, id(response_headers), head)  # the header lists are kept on the payload
        built = payload.wire.get(rep)
        if built is None or built[0] is not date_headers:
            wire = [STATUS_LINE[status]]
            for hname, hvalue in (*date_headers, *response_headers):
                wire += (hname, b": ", hvalue, b"\r\n")
            wire += (b"\r\n", body)
            data = b"".join(wire)
            if built is None and not payload.wire:  # the payload's first: its files close with it
                weakref.finalize(payload, _close_files, payload.wire)
            elif built is not None and built[2] >= 0:
                os.close(built[2])  # sendfile is synchronous: nothing reads the old file any more
            built = payload.wire[rep] = (date_headers, data, _memfd(data))
        self.served += 1
        return built


class HotHttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol; cached whole-endpoint reads are answered by ``hot`` without an ASGI cycle."""

    hot: HotPath  # set on the subclass ``hot_protocol`` makes
    _answered = False
    _fileno = -1  # the socket's, for sendfile (-1: write through the transport only, e.g. TLS)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self._fileno = sock.fileno()

    def on_message_begin(self) -> None:
        # uvicorn's, without the ASGI scope (a dict and a copy of the app state per request): a request
        # answered here needs none; one going on to uvicorn gets it in on_headers_complete
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        cycle = self.cycle
        if (cycle is None or cycle.response_complete) and not self.pipeline and not self.flow.write_paused \
                and self.parser.should_keep_alive() and self.parser.get_http_version() == "1.1":
            wire = self.hot.answer(self.parser.get_method(), self.url, self.headers, self.server_state.default_headers)
            if wire is not None:
                self._answered = True
                self._send(wire[1], wire[2])
                self.server_state.total_requests += 1
                self._unset_keepalive_if_required()
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler)
                return
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()  # the scope uvicorn makes at the start of a message, then what was parsed
        self.url, self.expect_100_continue = url, expect
        self.headers = self.scope["headers"] = headers
        super().on_headers_complete()

    def _send(self, data: bytes, fd: int) -> None:
        sent = 0
        if fd >= 0 and self._fileno >= 0 and not self.transport.get_write_buffer_size():
            try:
                sent = os.sendfile(self._fileno, fd, 0, len(data))
            except OSError:  # would block, or the peer is gone: the transport finds out and reports it
                sent = 0
            else:
                self.hot.sent_from_file += 1
        if sent < len(data):
            self.transport.write(memoryview(data)[sent:] if sent else data)

    def on_message_complete(self) -> None:
        if self._answered:  # no body: the request ended with its headers
            self._answered = False
            return
        super().on_message_complete()


def hot_protocol(state: ApiState) -> type[HotHttpProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, bound to one app's API state."""
    return type("BoundHotHttpProtocol", (HotHttpProtocol,), {"hot": HotPath(state)})
