"""A real HTTP server on 127.0.0.1 for the network sources' tests.

Tests queue responses per path (status, body, headers, or a body cut short so the
connection closes mid-transfer) and read back what was requested and when. The
sources talk to it through httpx exactly as they talk to arXiv or Hugging Face.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    truncate_at: int | None = None  # send only this many bytes of body, then close


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


class LoopbackServer:
    def __init__(self) -> None:
        self._queues: dict[str, list[Reply]] = {}
        self._defaults: dict[str, Reply] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                with server._lock:
                    server.requests.append(Seen(parts.path, query, dict(self.headers), time.monotonic()))
                    queue = server._queues.get(parts.path)
                    reply = queue.pop(0) if queue else server._defaults.get(parts.path)
                if reply is None:
                    reply = Reply(404, b"not found")
                self.send_response(reply.status)
                headers = {"Content-Type": "text/plain; charset=utf-8"} | reply.headers
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.truncate_at is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if reply.truncate_at is not None:
                    self.wfile.write(reply.body[: reply.truncate_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(reply.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def queue(self, path: str, body: bytes | str = b"", status: int = 200, **kw: object) -> None:
        """Serve this reply once, after those queued before it."""
        if isinstance(body, str):
            body = body.encode()
        with self._lock:
            self._queues.setdefault(path, []).append(Reply(status, body, **kw))  # type: ignore[arg-type]

    def always(self, path: str, body: bytes | str = b"", status: int = 200, **kw: object) -> None:
        """Serve this reply whenever nothing is queued for the path."""
        if isinstance(body, str):
            body = body.encode()
        with self._lock:
            self._defaults[path] = Reply(status, body, **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
