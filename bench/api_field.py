"""The HTTP servers of the field on the API's two benchmark sizes, each beside one nginx worker, under wrk.

    .venv/bin/python bench/api_field.py [--duration 5] [--rounds 3]
    .venv/bin/pip install granian   # to include granian (not a dependency of nof0)

Not part of ``make bench``: it is how the API's server was chosen (bench/README.md). Every server
answers ``/small`` (1,184 bytes) and ``/big`` (209,060 bytes) with the same prebuilt JSON bytes and
headers, one process each, keep-alive, identity bodies; wrk (``-t1 -c32``) alternates between them
and nginx, and the median round's req/s is printed with its ratio to nginx's in the same rounds.

* ``bare``: an ``asyncio.Protocol`` on uvloop with httptools, writing the prebuilt response;
  ``bare-sendfile``: the same, sending the response from a memfd with ``sendfile`` (on request only);
* ``-sndbuf`` after ``bare``/``uvicorn-parser`` (on request only): a 4 MB socket send buffer;
* ``uvicorn-parser``: uvicorn's httptools protocol answering in the parser callback, the way
  ``nof0.api.wire`` does (no ASGI cycle), everything else through uvicorn;
* ``uvicorn-asgi``: a raw ASGI app (two ``send`` calls) on uvicorn + httptools + uvloop;
* ``starlette``: a Starlette route returning a ``Response``, on the same uvicorn;
* ``granian-asgi`` / ``granian-rsgi``: granian (Rust) with one worker, ASGI and its own RSGI interface.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from email.utils import formatdate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_bench import run_wrk, start_nginx, stop_processes  # noqa: E402

SIZES = {"/small": 1184, "/big": 209060}
BODIES = {p: b'{"x":"' + b"a" * (n - 8) + b'"}' for p, n in SIZES.items()}
HEADERS = {p: [(b"content-type", b"application/json"), (b"etag", b'"0123456789abcdef0123456789abcdef"'),
               (b"cache-control", b"public, max-age=10"), (b"vary", b"Accept-Encoding"),
               (b"content-length", str(len(b)).encode())] for p, b in BODIES.items()}


def _wire(path: str) -> bytes:
    head = b"".join(k + b": " + v + b"\r\n" for k, v in HEADERS[path])
    return b"HTTP/1.1 200 OK\r\ndate: " + formatdate(usegmt=True).encode() + b"\r\n" + head + b"\r\n" + BODIES[path]


async def asgi_app(scope, receive, send) -> None:
    path = scope["path"]
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS[path]})
    await send({"type": "http.response.body", "body": BODIES[path]})


async def rsgi_app(scope, protocol) -> None:
    path = scope.path
    protocol.response_bytes(200, [(k.decode(), v.decode()) for k, v in HEADERS[path][:-1]], BODIES[path])


def starlette_app():
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    def handler(path: str):
        async def endpoint(request):
            return Response(BODIES[path], media_type="application/json", headers={
                "etag": '"0123456789abcdef0123456789abcdef"', "cache-control": "public, max-age=10",
                "vary": "Accept-Encoding"})
        return endpoint

    return Starlette(routes=[Route(p, handler(p)) for p in SIZES])


SNDBUF = 4 * 1024 * 1024  # the "-sndbuf" kinds: a send buffer the whole big response fits in


def _big_sndbuf(transport) -> None:
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)


def serve(kind: str, port: int) -> None:
    import uvicorn

    sndbuf = kind.endswith("-sndbuf")
    kind = kind.removesuffix("-sndbuf")
    if kind in ("bare", "bare-sendfile"):
        import os

        import httptools
        import uvloop

        wire = {p.encode(): _wire(p) for p in SIZES}

        class Bare(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport, self.parser, self.url = transport, httptools.HttpRequestParser(self), b""
                if sndbuf:
                    _big_sndbuf(transport)

            def on_url(self, url: bytes) -> None:
                self.url = url

            def on_message_complete(self) -> None:
                self.transport.write(wire[self.url])

            def data_received(self, data: bytes) -> None:
                self.parser.feed_data(data)

        files = {}  # the response in a memfd, sent with sendfile (no copy from user space)
        if kind == "bare-sendfile":
            for p in SIZES:
                fd = os.memfd_create(p.strip("/"))
                os.write(fd, _wire(p))
                files[p.encode()] = (fd, len(_wire(p)))

        class SendFile(Bare):
            def on_message_complete(self) -> None:
                fd, size = files[self.url]
                sent = 0
                if self.transport.get_write_buffer_size() == 0:
                    try:
                        sent = os.sendfile(self.transport.get_extra_info("socket").fileno(), fd, 0, size)
                    except BlockingIOError:
                        sent = 0
                if sent < size:
                    self.transport.write(os.pread(fd, size - sent, sent))

        async def main() -> None:
            factory = SendFile if kind == "bare-sendfile" else Bare
            server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", port)
            await server.serve_forever()

        uvloop.run(main())
        return
    if kind == "uvicorn-parser":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        wire = {p.encode(): _wire(p) for p in SIZES}

        class InParser(HttpToolsProtocol):
            answered = False

            def connection_made(self, transport) -> None:
                super().connection_made(transport)
                if sndbuf:
                    _big_sndbuf(transport)

            def on_headers_complete(self) -> None:
                body = wire.get(self.url)
                if body is not None and (self.cycle is None or self.cycle.response_complete):
                    self.answered = True
                    self.transport.write(body)
                    return
                super().on_headers_complete()

            def on_message_complete(self) -> None:
                if self.answered:
                    self.answered = False
                    return
                super().on_message_complete()

        http, app = InParser, asgi_app
    else:
        http, app = "httptools", starlette_app() if kind == "starlette" else asgi_app
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http=http, log_level="warning", access_log=False,
                lifespan="off", server_header=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} not ready")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--kinds", help="comma-separated servers to run (default: all; '-sndbuf' variants on request)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    kinds = ["bare", "uvicorn-parser", "uvicorn-asgi", "starlette"]
    granian = shutil.which("granian", path=str(Path(sys.executable).parent))
    if granian and importlib.util.find_spec("granian"):
        kinds += ["granian-asgi", "granian-rsgi"]
    else:
        print("granian not installed: left out (.venv/bin/pip install granian)")
    if args.kinds:
        kinds = args.kinds.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="nof0f-", dir="/tmp"))
    tmp.chmod(0o755)
    procs: list[subprocess.Popen] = []
    try:
        root = tmp / "static"
        root.mkdir()
        for path, body in BODIES.items():
            (root / path.lstrip("/")).write_bytes(body)
        ports = {"nginx": _free_port()}
        procs.append(start_nginx(root, ports["nginx"], tmp))
        for kind in kinds:
            ports[kind] = port = _free_port()
            if kind.startswith("granian"):
                interface = kind.split("-")[1]
                cmd = [granian, "--interface", interface, "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
                       "--no-ws", "--log-level", "warning", f"api_field:{interface}_app"]
            else:
                cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
            procs.append(subprocess.Popen(cmd, cwd=Path(__file__).parent, stderr=subprocess.DEVNULL))
        for port in ports.values():
            _wait(f"http://127.0.0.1:{port}/small")
        print(f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} rounds (median), one process per server")
        print(f"{'server':<16}" + "".join(f"{p + ' req/s':>14}{'/ nginx':>9}" for p in SIZES))
        rows = {}
        for path in SIZES:
            runs: dict[str, list[float]] = {name: [] for name in ports}
            for _ in range(args.rounds):
                for name, port in ports.items():
                    runs[name].append(run_wrk(f"http://127.0.0.1:{port}{path}", args.duration,
                                              args.connections)["rps"])
            for name, rs in runs.items():
                rows.setdefault(name, {})[path] = sorted(rs)[len(rs) // 2]
        for name, by_path in rows.items():
            print(f"{name:<16}" + "".join(f"{by_path[p]:>14,.0f}{by_path[p] / rows['nginx'][p]:>9.2f}" for p in SIZES))
        return 0
    finally:
        stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
