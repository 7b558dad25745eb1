"""Make ``nyanops`` importable from src/ when the package is not installed (e.g. a bare checkout), and a
local HTTP server for download tests (127.0.0.1 only)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

try:
    import nyanops  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))


class ArchiveServer:
    """Serves ``files`` (name -> bytes) at ``url(name)``. ``honour_range`` off makes it ignore Range headers;
    ``cut_after`` sends that many bytes of the next response, waits ``stall`` seconds, and drops the connection.
    ``requests`` records (name, Range header) of every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.honour_range = True
        self.cut_after: int | None = None
        self.stall = 0.0
        self.requests: list[tuple[str, str | None]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.archive_server = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{name}"

    def __enter__(self) -> ArchiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: ArchiveServer = self.server.archive_server  # type: ignore[attr-defined]
        name, wanted = self.path.lstrip("/"), self.headers.get("Range")
        server.requests.append((name, wanted))
        body = server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted and server.honour_range else 0
        if start >= len(body):
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut, server.cut_after = server.cut_after, None
        self.wfile.write(body[start:] if cut is None else body[start : start + cut])
        if cut is not None and server.stall:
            self.wfile.flush()
            time.sleep(server.stall)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def archive_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArchiveServer]:
    monkeypatch.setenv("no_proxy", "*")  # never route 127.0.0.1 through a proxy from the environment
    with ArchiveServer() as server:
        yield server
