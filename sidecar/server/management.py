"""The HTTP management listener: /healthz, /readyz and Prometheus /metrics.

An asyncio server on its own event loop in one daemon thread: three tiny endpoints do not justify
a web framework, and the thread keeps answering while the gRPC server drains. An event loop rather
than http.server's thread per connection, so that idle or half-sent connections (slowloris) cost a
few kilobytes each, not a thread each, and a probe is answered whatever they do. The bounds:

- at most `max_connections` connections open at once; a new one over the cap closes the oldest
  connection that has not yet sent a whole request head (so a flood of idle connections cannot
  lock probes out), or, if all are mid-answer, the new one itself;
- a request head must arrive within `read_timeout` seconds of the connection opening or of the
  previous answer (keep-alive), and be at most MAX_HEAD_BYTES; an answer must be taken by the
  client within `read_timeout` as well;
- GET and HEAD only, no request bodies;
- a listen backlog of BACKLOG, so a burst of probes queues in the kernel instead of being refused.

Whatever a client does (hangs up early, sends garbage, resets mid-answer) ends its connection
quietly: counted in flag_sidecar_management_connections_closed_total by reason, logged at DEBUG as
one line, never a traceback. Headers are parsed by the stdlib's http.client.parse_headers.

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
  flagd#465 decided). Nor does a flag source that is down, or a set served from the
  last-known-good copy: the 200 then says why the set may be stale (`ready (stale: ...)`), since
  taking every replica out of traffic during a control-plane outage would turn it into an
  application outage.
- /metrics is the text exposition of the sidecar's own CollectorRegistry.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

DEFAULT_MANAGEMENT_LISTEN = "127.0.0.1:8014"
# A client that sends nothing (or takes nothing) for this long is dropped.
DEFAULT_READ_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_CONNECTIONS = 256
BACKLOG = 128
# A probe's or scraper's request head is a few hundred bytes.
MAX_HEAD_BYTES = 8 * 1024
# Why connections were closed by the server, the label values of the closed-connections counter.
CLOSE_REASONS = ("timeout", "evicted", "refused", "bad_request", "client_error")

_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


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


class _BadRequest(Exception):
    """A request head this server does not take: answered with `status`, then the connection closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.listen = listen
        self.store = store
        self.registry = registry
        self.max_connections = max_connections
        self.read_timeout = read_timeout
        self._serving = False
        self._liveness: Callable[[], str | None] | None = None
        self._shutting_down = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        # Open connections in the order they came (dicts keep it), each True while it waits for a
        # request head (evictable) and False while it is being answered. Touched on the loop only.
        self._connections: dict[asyncio.StreamWriter, bool] = {}
        self.closed: dict[str, int] = dict.fromkeys(CLOSE_REASONS, 0)  # read by the collector
        self.port = 0
        if registry is not None:
            registry.register(_ManagementCollector(self))

    @property
    def address(self) -> str:
        host = split_host_port(self.listen)[0]
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def start(self) -> int:
        """Bind and serve in a daemon thread; returns the bound port. Raises OSError."""
        host, port = split_host_port(self.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            # Bound here, in the caller's thread, so that a busy port is the caller's OSError.
            sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
        except OSError as error:
            raise OSError(f"cannot listen on {self.listen} (management): {error.strerror or error}") from None
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._connection, sock=sock, backlog=BACKLOG, limit=MAX_HEAD_BYTES)
            )
        except BaseException:
            sock.close()
            loop.close()
            raise
        self._thread = threading.Thread(target=loop.run_forever, name="management", daemon=True)
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
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=2.0)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if not loop.is_running():
            loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.transport.abort()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------ one connection

    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        """Make room for a new connection (see the module docstring); False: refuse it."""
        if len(self._connections) >= self.max_connections:
            idle = next((other for other, waiting in self._connections.items() if waiting), None)
            if idle is None:
                self._count("refused")
                return False
            self._connections.pop(idle)
            idle.transport.abort()
            self._count("evicted")
        self._connections[writer] = True
        return True

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit(writer):
            writer.transport.abort()
            return
        try:
            keep_alive = True
            while keep_alive and writer in self._connections:
                self._connections[writer] = True
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout)
                except asyncio.IncompleteReadError as error:
                    # Hung up in the middle of a request head (not: evicted, or between requests).
                    if error.partial.strip() and writer in self._connections:
                        self._count("client_error")
                    return
                except TimeoutError:
                    self._count("timeout")
                    return
                except asyncio.LimitOverrunError:
                    raise _BadRequest(431, "request head too large") from None
                self._connections[writer] = False
                method, path, keep_alive, accept = _parse_head(head)
                status, body, content_type = self._route(path, accept)
                sent = b"" if method == "HEAD" else body
                writer.write(_response(status, sent, len(body), content_type, keep_alive))
                try:
                    await asyncio.wait_for(writer.drain(), self.read_timeout)
                except TimeoutError:
                    self._count("timeout")
                    return
                logger.debug("management %s %s %s", _peer(writer), method, path, extra={"status": status})
        except _BadRequest as bad:
            self._count("bad_request")
            logger.debug("management %s: bad request (%s)", _peer(writer), bad)
            with contextlib.suppress(Exception):
                body = f"{bad}\n".encode()
                writer.write(_response(bad.status, body, len(body), "text/plain; charset=utf-8", False))
                await asyncio.wait_for(writer.drain(), self.read_timeout)
        except (ConnectionError, OSError) as error:
            # Reset or broken pipe: the client's doing, not worth more than a debug line.
            self._count("client_error")
            logger.debug("management %s: %s", _peer(writer), error)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug here must not end the loop or print a traceback
            self._count("client_error")
            logger.warning(
                "management %s: connection ended on %s: %s", _peer(writer), type(error).__name__, error
            )
        finally:
            self._connections.pop(writer, None)
            # An answer the client has not taken within the timeout is dropped, not waited for.
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()
            else:
                writer.close()

    def _count(self, reason: str) -> None:
        self.closed[reason] += 1

    def _route(self, path: str, accept: str | None) -> tuple[int, bytes, str]:
        text = "text/plain; charset=utf-8"
        if path == "/healthz":
            problem = self.liveness_problem()
            if problem is None:
                return 200, b"ok\n", text
            return 503, f"not alive: {problem}\n".encode(), text
        if path == "/readyz":
            reason = self.not_ready_reason()
            if reason is None:
                stale = _stale_reasons(self.store)
                if stale:
                    return 200, f"ready (stale: {'; '.join(stale)})\n".encode(), text
                return 200, b"ready\n", text
            return 503, f"not ready: {reason}\n".encode(), text
        if path == "/metrics" and self.registry is not None:
            encoder, content_type = choose_encoder(accept or "")
            return 200, encoder(self.registry), content_type
        return 404, b"not found; try /healthz, /readyz or /metrics\n", text


def _stale_reasons(store: Readiness) -> list[str]:
    """Why the served set may not be the source's (store.source_status, when the store has one)."""
    status = getattr(store, "source_status", None)
    return [] if status is None else list(status.stale_reasons())


def _parse_head(head: bytes) -> tuple[str, str, bool, str | None]:
    """(method, path without the query, keep the connection open, Accept header). Raises _BadRequest."""
    request_line, _, header_block = head.partition(b"\r\n")
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        if len(parts) == 3 and parts[2].startswith(b"HTTP/"):
            raise _BadRequest(505, "only HTTP/1.x is served")
        raise _BadRequest(400, "malformed request line")
    method, target, version = (part.decode("latin-1") for part in parts)
    if method not in ("GET", "HEAD"):
        raise _BadRequest(405, f"{method[:16]} is not served; use GET or HEAD")
    try:
        headers = http.client.parse_headers(io.BytesIO(header_block))
    except http.client.HTTPException as error:
        raise _BadRequest(400, f"malformed headers ({type(error).__name__})") from None
    if headers.get("Transfer-Encoding") or headers.get("Content-Length", "0").strip() != "0":
        raise _BadRequest(400, "request bodies are not accepted")
    connection = (headers.get("Connection") or "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return method, target.split("?", 1)[0], keep_alive, headers.get("Accept")


def _response(status: int, body: bytes, length: int, content_type: str, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n"
        "Cache-Control: no-store\r\n"
    )
    if not keep_alive:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + body


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else "?"


class _ManagementCollector(Collector):
    def __init__(self, server: ManagementServer) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        closed = CounterMetricFamily(
            "flag_sidecar_management_connections_closed",
            "Management listener connections the server closed, by reason (timeout, evicted: the "
            "oldest idle one closed for a new one over the cap, refused, bad_request, client_error)",
            labels=("reason",),
        )
        for reason, count in self._server.closed.items():
            closed.add_metric((reason,), count)
        yield closed
        yield GaugeMetricFamily(
            "flag_sidecar_management_connections",
            "Connections open on the management listener",
            value=self._server.open_connections,
        )
