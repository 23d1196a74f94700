"""The HTTP management listener: /healthz, /readyz and Prometheus /metrics.

Stdlib http.server in a daemon thread: three tiny endpoints do not justify a web framework, and
the thread keeps answering while the gRPC server drains.

- /healthz is liveness: 200 while the gRPC server answers its own loopback health check
  (sidecar.server.liveness), also while it drains on SIGTERM and whatever state the flag file is
  in; 503 with the reason once that check has gone unanswered for a while (a wedged server). A
  liveness failure makes the kubelet kill the container, which during a drain would cut
  in-flight calls short and on a broken flag edit would restart a sidecar that is happily
  serving the last good set. Readiness withdraws traffic; liveness only catches a wedged server.
- /readyz is readiness: 200 only once the store has *applied* a flag set (FlagStore.loaded is
  set after the swap, which avoids flagd#2047's window of FLAG_NOT_FOUND) and the gRPC server
  accepts calls; 503 with the reason otherwise, and 503 again from the moment shutdown starts.
  A later rejected reload does not make it unready: the last good set is still served (as
  flagd#465 decided).
- /metrics is the text exposition of the sidecar's own CollectorRegistry.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

logger = logging.getLogger(__name__)

DEFAULT_MANAGEMENT_LISTEN = "127.0.0.1:8014"
# A client that sends nothing for this long is dropped, so slow clients cannot pin threads.
REQUEST_TIMEOUT_SECONDS = 5.0


class Readiness(Protocol):
    @property
    def ready(self) -> bool: ...


def split_host_port(address: str) -> tuple[str, int]:
    """ "127.0.0.1:8014" -> ("127.0.0.1", 8014); "[::1]:8014" -> ("::1", 8014). Raises ValueError."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, not {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    management: ManagementServer

    def server_bind(self) -> None:
        # HTTPServer's own looks up the bound address's host name (socket.getfqdn): a reverse DNS
        # query at start-up, and the idna codec loaded for a name nothing here uses.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT_SECONDS
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._route(send_body=True)

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def _route(self, send_body: bool) -> None:
        management = self.server.management
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            problem = management.liveness_problem()
            if problem is None:
                self._reply(200, b"ok\n", send_body=send_body)
            else:
                self._reply(503, f"not alive: {problem}\n".encode(), send_body=send_body)
        elif path == "/readyz":
            reason = management.not_ready_reason()
            if reason is None:
                self._reply(200, b"ready\n", send_body=send_body)
            else:
                self._reply(503, f"not ready: {reason}\n".encode(), send_body=send_body)
        elif path == "/metrics" and management.registry is not None:
            encoder, content_type = choose_encoder(self.headers.get("Accept"))
            self._reply(200, encoder(management.registry), content_type, send_body)
        else:
            self._reply(404, b"not found; try /healthz, /readyz or /metrics\n", send_body=send_body)

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        send_body: bool = True,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Probes hit these endpoints every few seconds: access lines only at debug level.
        logger.debug("management %s - " + format, self.client_address[0], *args)


class ManagementServer:
    """Serves the management endpoints on `listen` (port 0 picks a free port) in a daemon thread.

    `store.ready` says a flag set has been applied; the owner calls `mark_serving()` once the
    gRPC server accepts calls and `begin_shutdown()` as the first step of shutting down.
    """

    def __init__(
        self,
        listen: str = DEFAULT_MANAGEMENT_LISTEN,
        *,
        store: Readiness,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.listen = listen
        self.store = store
        self.registry = registry
        self._serving = False
        self._liveness: Callable[[], str | None] | None = None
        self._shutting_down = False
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def address(self) -> str:
        host = split_host_port(self.listen)[0]
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def start(self) -> int:
        """Bind and serve in a daemon thread; returns the bound port. Raises OSError."""
        host, port = split_host_port(self.listen)
        server_class = _Server
        if ":" in host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            httpd = server_class((host, port), _Handler)
        except OSError as error:
            raise OSError(f"cannot listen on {self.listen} (management): {error.strerror or error}") from None
        httpd.management = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="management", daemon=True
        )
        self._thread.start()
        logger.info("management endpoints on http://%s (/healthz, /readyz, /metrics)", self.address)
        return self.port

    def mark_serving(self, serving: bool = True, liveness: Callable[[], str | None] | None = None) -> None:
        """The gRPC server accepts calls; `liveness` (SidecarServer.liveness_problem) from now on
        decides /healthz."""
        self._serving = serving
        if liveness is not None:
            self._liveness = liveness

    def liveness_problem(self) -> str | None:
        return None if self._liveness is None else self._liveness()

    def begin_shutdown(self) -> None:
        """From now on /readyz answers 503: the first step of a graceful shutdown."""
        self._shutting_down = True

    def not_ready_reason(self) -> str | None:
        if self._shutting_down:
            return "shutting down"
        if not self.store.ready:
            return "no flag set loaded yet"
        if not self._serving:
            return "gRPC server not accepting calls yet"
        return None

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._httpd = None
