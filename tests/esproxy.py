"""A fault-injecting HTTP proxy on loopback in front of the real ES-API server: it answers chosen
bulk requests with an error status, or drops their connections, and forwards everything else."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class FaultProxy:
    def __init__(self, upstream: str):
        u = urlparse(upstream)
        self.upstream = (u.hostname, u.port)
        self.lock = threading.Lock()
        self.bulk_statuses: list[int] = []   # answer the next bulk requests with these statuses
        self.drop_bulk_after: int | None = None  # drop bulk connections after this many bulk requests...
        self.drop_for: float | None = None       # ...for this many seconds (None: for good)
        self.bulk_requests = 0
        self.injected = 0
        self._down_since: float | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _fault(self, is_bulk: bool) -> str | int | None:
        if not is_bulk:
            return None
        with self.lock:
            self.bulk_requests += 1
            if self.bulk_statuses:
                self.injected += 1
                return self.bulk_statuses.pop(0)
            if self.drop_bulk_after is not None and self.bulk_requests > self.drop_bulk_after:
                now = time.monotonic()
                self._down_since = self._down_since or now
                if self.drop_for is None or now - self._down_since < self.drop_for:
                    self.injected += 1
                    return "drop"
        return None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        fault = self._fault("_bulk" in h.path)
        if fault == "drop":  # the server vanished mid-request: no response at all
            h.close_connection = True
            h.connection.close()
            return
        if fault is not None:
            data = json.dumps({"error": {"type": "es_rejected_execution_exception", "reason": "injected"},
                               "status": fault}).encode()
            h.send_response(fault)
            h.send_header("Content-Type", "application/json")
            h.send_header("X-Elastic-Product", "Elasticsearch")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(h.command, h.path, body=body or None, headers=headers)
        r = conn.getresponse()
        data = r.read()
        h.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
        conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
