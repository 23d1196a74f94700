"""A real HTTP server (http.server, in a thread, on 127.0.0.1) serving one flag document, for the
tests of the HTTP(S) source: it answers conditional GETs with 304, can be told to fail (a status),
to stall (past the client's timeout) or to stop (connection refused), and comes back on the same
port. It counts what it answered."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml


class FlagServer:
    def __init__(self, document: Any = None, path: str = "/flags.yaml") -> None:
        self.path = path
        self.content_type: str | None = "application/yaml"
        self.etags = True  # send an ETag (the SHA-1 of the body)
        self.last_modified = True  # send Last-Modified and honour If-Modified-Since
        self.status: int | None = None  # answer every GET with this status instead
        self.delay = 0.0  # seconds to stall before answering
        self.gate: threading.Event | None = None  # when set: every answer waits for it
        self.waiting = threading.Event()  # a request is held at the gate
        self.answered: Counter[int] = Counter()  # by status
        self.requests: list[dict[str, str]] = []  # the headers of each request
        self.proxied: list[str] = []  # absolute request targets: this server was asked as a proxy
        self.tls: ssl.SSLContext | None = None
        self._body = b""
        self._modified = time.time()
        self._server: ThreadingHTTPServer | None = None
        self.connections: set[socket.socket] = set()  # open ones: a stop() closes them too
        self._thread: threading.Thread | None = None
        self.port = 0
        if document is not None:
            self.serve(document)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{self.path}"

    def serve(self, document: Any) -> None:
        """Serve `document` (a dict, dumped as YAML, or bytes/str as they are) from now on."""
        if isinstance(document, str):
            document = document.encode()
        self._body = document if isinstance(document, bytes) else yaml.safe_dump(document).encode()
        # Last-Modified has a resolution of one second: a change must move it.
        self._modified = max(time.time(), self._modified + 1)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self._body).hexdigest()[:16] + '"'

    def start(self) -> FlagServer:
        server = _QuietServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop the open connections: a connection to the port is refused until
        start() (same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        self.requests.append(dict(handler.headers.items()))
        if self.delay:
            time.sleep(self.delay)
        if self.gate is not None:
            self.waiting.set()
            self.gate.wait(30)
        target = handler.path
        if target.startswith("http://"):  # a forward proxy's request: answered from here
            self.proxied.append(target)
            target = "/" + target.split("/", 3)[3]
        if target.split("?", 1)[0] != self.path:
            return self._send(handler, 404, b"no such document\n")
        if self.status is not None:
            return self._send(handler, self.status, b"failing on purpose\n")
        etag, modified = self.etag, formatdate(self._modified, usegmt=True)
        match = handler.headers.get("If-None-Match")
        since = handler.headers.get("If-Modified-Since")
        if (self.etags and match == etag) or (not self.etags and self.last_modified and since == modified):
            return self._send(handler, 304, b"", etag=etag if self.etags else None)
        headers = {}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        if self.last_modified:
            headers["Last-Modified"] = modified
        return self._send(handler, 200, self._body, etag=etag if self.etags else None, **headers)

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        etag: str | None = None,
        **headers: str,
    ) -> None:
        self.answered[status] += 1
        handler.send_response(status)
        if etag is not None:
            handler.send_header("ETag", etag)
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        if status != 304:
            handler.send_header("Content-Length", str(len(body)))
        with contextlib.suppress(OSError):  # the client gave up (a timeout test)
            handler.end_headers()
            if status != 304:
                handler.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (the timeout tests do): no traceback on stderr


def _handler(server: FlagServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def setup(self) -> None:
            super().setup()
            server.connections.add(self.connection)

        def finish(self) -> None:
            server.connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def do_GET(self) -> None:
            server.answer(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
