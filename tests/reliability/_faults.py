"""An HTTP fault-injection proxy in front of an S3 endpoint (moto), run in a child process.

delta-rs talks to ``http://127.0.0.1:<proxy port>``; the proxy forwards every request to the real
endpoint unless a fault rule matches it. Rules are set over HTTP (``POST /__faults__/rules``) so
tests can make the endpoint fail at an exact point of a write:

* ``refuse``: close the connection without forwarding (the request never reaches S3, as if the
  endpoint went down just before it);
* ``drop_response``: forward the request (S3 applies it) and close the connection without an
  answer (the endpoint died after doing the work: the client cannot know it succeeded);
* ``status``: answer with an HTTP error (e.g. 503 SlowDown) without forwarding.

A rule matches on method and a regex over the path, and fires ``times`` times. ``GET
/__faults__/log`` returns what was seen: ``[method, path, status or action]``.

The proxy runs in a child process (not a thread of the test process): deltalake holds the GIL
during some network I/O, which would starve an in-process server thread.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import re
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.reliability._moto import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _serve(port: int, upstream_port: int, ready: Any) -> None:  # child process
    state: dict[str, Any] = {"rules": [], "log": []}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _control(self, body: bytes) -> None:
            if self.command == "POST" and self.path.endswith("/rules"):
                with lock:
                    state["rules"] = json.loads(body or b"[]")
                payload = b"{}"
            elif self.path.endswith("/log"):
                with lock:
                    payload = json.dumps(state["log"]).encode()
                    if self.command == "DELETE":
                        state["log"] = []
            else:
                payload = b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _match(self) -> dict[str, Any] | None:
            with lock:
                for rule in state["rules"]:
                    if rule.get("times", 1) <= 0:
                        continue
                    if rule.get("method", self.command) != self.command:
                        continue
                    if not re.search(rule.get("path", ""), self.path):
                        continue
                    rule["times"] = rule.get("times", 1) - 1
                    return dict(rule)
            return None

        def _record(self, outcome: Any) -> None:
            with lock:
                state["log"].append([self.command, self.path, outcome])

        def _handle(self) -> None:
            body = _read_body(self)
            if self.path.startswith("/__faults__"):
                self._control(body)
                return
            rule = self._match()
            action = rule["action"] if rule else None
            if action == "refuse":
                self._record("refused")
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if action == "status":
                self._record(rule["status"])
                payload = rule.get("body", "").encode()
                self.send_response(rule["status"])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                status = response.status
                reply_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
            finally:
                upstream.close()
            if action == "drop_response":
                self._record(f"dropped {status}")
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._record(status)
            self.send_response(status)
            for key, value in reply_headers:
                self.send_header(key, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
            else:
                length = response.getheader("Content-Length")
                if length is not None:
                    self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    ready.set()
    server.serve_forever()


class FaultProxy:
    """Start with the upstream endpoint URL; ``endpoint`` is what delta-rs should use."""

    def __init__(self, upstream: str) -> None:
        upstream_port = int(upstream.rsplit(":", 1)[1])
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        ctx = mp.get_context("spawn")
        ready = ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(self.port, upstream_port, ready), daemon=True)
        self._proc.start()
        if not ready.wait(60):
            raise RuntimeError("fault proxy did not start")
        time.sleep(0.05)

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.endpoint + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def set_rules(self, *rules: dict[str, Any]) -> None:
        self._call("POST", "/__faults__/rules", list(rules))

    def log(self, *, clear: bool = False) -> list[tuple[str, str, Any]]:
        return [tuple(entry) for entry in self._call("DELETE" if clear else "GET", "/__faults__/log")]

    def close(self) -> None:
        self._proc.kill()
        self._proc.join(10)
