"""flagd.evaluation.v1 and v2 over the Connect protocol (HTTP/1.1), for `--flagd-connect-listen`.

OpenFeature's Go flagd provider (go-sdk-contrib, RPC resolver) speaks Connect, not gRPC: unary
calls are `POST /flagd.evaluation.v2.Service/<Method>` with an `application/proto` or
`application/json` body, errors a JSON body with a Connect code, and EventStream an enveloped
`application/connect+proto` stream ending with its end-of-stream message. connectrpc (the official
Connect for Python) speaks all of that from the generated `evaluation_connect` stubs, and uvicorn
serves their two ASGI applications (one per protocol version, told apart by path, `_Router`) on an
event loop in one daemon thread.

Nothing is evaluated here: each call goes to the gRPC listeners' servicer class of its version
(EvaluationServiceV1 or EvaluationServiceV2, over the same FlagdServices instance: the same
resolver, metrics, events and EventStream fan-out) through `ConnectCall`, a stand-in for the
grpc.ServicerContext those servicers read headers from and abort on. So the answers, the error
mapping (a gRPC status code becomes the Connect code of the same name), the per-call metrics
(`flagd.v1/...`, `flagd.v2/...`) and the limits are the gRPC listeners':

- a request message over --max-request-bytes is `resource_exhausted` (connectrpc's read_max_bytes);
  a request head over MAX_HEAD_BYTES is refused by uvicorn;
- EventStreams are admitted by the gRPC server's StreamAdmission (--max-streams counts the streams
  of both kinds of listener) and the broadcaster's own cap, and idle-closed by its reaper
  (`deadline_exceeded`); a keep-alive connection that sends nothing for --stream-idle-timeout is
  closed by uvicorn;
- --max-concurrent-calls caps the connections served at once (uvicorn answers 503 beyond, which
  Connect clients read as `unavailable`);
- TLS and mutual TLS as on the gRPC TCP listeners (--tls-cert, --tls-key, --tls-client-ca).

Unary calls run on the event loop itself: an evaluation is short, CPU-bound Python, which the GIL
would serialise on worker threads anyway, and a thread hop per call would only add its cost. An
EventStream's generator blocks on its queue between events, so each open one runs its steps on a
thread of its own (the listener's stream pool), as each holds a worker thread of the gRPC server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent import futures
from typing import Any, Final, NoReturn, cast

import grpc
import uvicorn
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from flagd.evaluation.v1 import evaluation_connect as connect_v1
from flagd.evaluation.v2 import evaluation_connect as connect_v2

from ..edge import INTERNAL_ERROR
from ..listeners import TlsFiles
from ..management import split_host_port
from ..streams import StreamAdmission
from .service import SERVICE_NAME_V1, SERVICE_NAME_V2, EvaluationServiceV1, EvaluationServiceV2, FlagdServices

logger = logging.getLogger(__name__)

# A provider's request head is a few hundred bytes (as on the management listener).
MAX_HEAD_BYTES: Final = 8 * 1024
# Threads for EventStreams beyond the broadcaster's cap, so that a stream over it is refused at
# once instead of waiting for a thread.
_SPARE_STREAM_THREADS: Final = 4
_END: Final = object()  # what next() gives at the end of a stream's generator


class _Aborted(Exception):
    """What ConnectCall.abort raises (grpc's raises too): the call ends with this status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def connect_error(self) -> ConnectError:
        return ConnectError(connect_code(self.code), self.message)


def connect_code(code: grpc.StatusCode) -> Code:
    """The Connect code of a gRPC status code: the same name (Connect spells CANCELLED with one L)."""
    return Code.CANCELED if code is grpc.StatusCode.CANCELLED else Code[code.name]


class ConnectCall:
    """What EvaluationServiceV1, the edge and stream admission use of a grpc.ServicerContext,
    for one Connect call."""

    def __init__(self, headers: Sequence[tuple[str, str]], peer: str | None) -> None:
        self._headers = tuple(headers)
        self._peer = f"ipv4:{peer}" if peer else ""  # grpcio's form; "" is "not told apart"
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._done = False
        self.ended: tuple[grpc.StatusCode, str] | None = None  # set by end_with_status

    # ------------------------------------------------------------ read by the services

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._headers

    def peer(self) -> str:
        return self._peer

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise _Aborted(code, details)

    def set_trailing_metadata(self, _metadata: object) -> None:
        """Rich error details (google.rpc.Status) have no place in a Connect error here."""

    def code(self) -> None:
        return None  # CallEdge.shield: no status is set before abort() raises

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Run `callback` when the call ends; False if it already has (grpcio's contract)."""
        with self._lock:
            if self._done:
                return False
            self._callbacks.append(callback)
            return True

    # ------------------------------------------------------------ ending

    def end_with_status(self, code: grpc.StatusCode, message: str) -> None:
        """End the call from any thread with `code` (streams.end_call, for the idle reaper)."""
        self.ended = (code, message)
        self.close()

    def cancel(self) -> None:
        self.end_with_status(grpc.StatusCode.CANCELLED, "cancelled by the server")

    def close(self) -> None:
        """The call is over: run the callbacks once (an EventStream's wakes up and ends)."""
        with self._lock:
            if self._done:
                return
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("a call's end callback failed")


def _call_of(ctx: Any) -> ConnectCall:
    headers = [(key.lower(), value) for key, value in ctx.request_headers.allitems()]
    return ConnectCall(headers, ctx.client_address)


class FlagdConnectService:
    """flagd.evaluation.v1.Service or v2.Service for connectrpc (evaluation_connect.Service), over
    the gRPC listener's servicer class of that version (module docstring). `threads` runs the
    EventStreams."""

    def __init__(
        self,
        servicer: EvaluationServiceV1 | EvaluationServiceV2,
        service_name: str,
        streams: StreamAdmission,
        threads: futures.ThreadPoolExecutor,
    ) -> None:
        self._servicer = servicer
        self._name = f"{service_name}/EventStream"
        # The same admission wrapper the gRPC server registers EventStream with.
        handler = streams.guard(self._name, grpc.unary_stream_rpc_method_handler(servicer.EventStream))
        # StreamAdmission's wrapper is a generator function (closed when a client goes away).
        self._event_stream = cast("Callable[[Any, Any], Generator[Any, None, None]]", handler.unary_stream)
        self._threads = threads

    @staticmethod
    def _unary(method: Callable[[Any, Any], Any], request: Any, ctx: Any) -> Any:
        try:
            return method(request, _call_of(ctx))
        except _Aborted as aborted:
            raise aborted.connect_error() from None

    async def resolve_all(self, request: Any, ctx: Any) -> Any:  # v1 only
        servicer = self._servicer
        assert isinstance(servicer, EvaluationServiceV1)  # v2's stubs have no such path
        return self._unary(servicer.ResolveAll, request, ctx)

    async def resolve_boolean(self, request: Any, ctx: Any) -> Any:
        return self._unary(self._servicer.ResolveBoolean, request, ctx)

    async def resolve_string(self, request: Any, ctx: Any) -> Any:
        return self._unary(self._servicer.ResolveString, request, ctx)

    async def resolve_float(self, request: Any, ctx: Any) -> Any:
        return self._unary(self._servicer.ResolveFloat, request, ctx)

    async def resolve_int(self, request: Any, ctx: Any) -> Any:
        return self._unary(self._servicer.ResolveInt, request, ctx)

    async def resolve_object(self, request: Any, ctx: Any) -> Any:
        return self._unary(self._servicer.ResolveObject, request, ctx)

    async def event_stream(self, request: Any, ctx: Any) -> AsyncIterator[Any]:
        """The gRPC EventStream's generator, each step on a stream thread; the client going away
        (connectrpc cancels this generator) ends it as a cancelled gRPC call does."""
        call = _call_of(ctx)
        messages = self._event_stream(request, call)
        step: futures.Future[Any] | None = None  # the step running (or queued) on a stream thread
        try:
            while True:
                step = self._threads.submit(next, messages, _END)
                message = await asyncio.wrap_future(step)
                if message is _END:
                    break
                yield message
        except _Aborted as aborted:
            raise aborted.connect_error() from None
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception:
            logger.exception("%s failed on an unexpected error", self._name)
            raise ConnectError(Code.INTERNAL, INTERNAL_ERROR) from None
        finally:
            call.close()  # wakes a generator blocked on its queue: it ends, releasing its slots
            if step is None:
                messages.close()
            else:
                # A cancelled wait leaves a running step running: the generator is closed (its
                # cleanup run) once that step returns, on its thread; at once if none is running.
                step.add_done_callback(lambda _step: messages.close())
        if call.ended is not None:  # the idle reaper (or the server) ended it
            code, text = call.ended
            raise ConnectError(connect_code(code), text)


class _Router:
    """The ASGI application of each service, by its path prefix ("/flagd.evaluation.v2.Service/");
    any other path is a plain 404, as connect-go's own servers answer an unknown procedure."""

    def __init__(self, apps: Sequence[Any]) -> None:
        self._apps = {f"{app.path}/": app for app in apps}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "")
        app = self._apps.get(path[: path.rfind("/") + 1])
        if app is not None:
            await app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


class FlagdConnectListener:
    """Serves FlagdConnectService on `listen` (HOST:PORT; port 0: any free port), with `tls` when
    given, in a daemon thread (uvicorn on an event loop of its own)."""

    def __init__(
        self,
        services: FlagdServices,
        streams: StreamAdmission,
        listen: str,
        *,
        max_request_bytes: int | None = None,
        max_concurrent_calls: int | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self._listen = listen
        self._tls = tls
        self._threads = futures.ThreadPoolExecutor(
            max_workers=services.events.max_streams + _SPARE_STREAM_THREADS,
            thread_name_prefix="flagd-connect-stream",
        )
        read_max_bytes = max_request_bytes or None
        v1 = FlagdConnectService(
            EvaluationServiceV1(services.resolver, services.events), SERVICE_NAME_V1, streams, self._threads
        )
        v2 = FlagdConnectService(
            EvaluationServiceV2(services.resolver, services.events), SERVICE_NAME_V2, streams, self._threads
        )
        self._router = _Router(
            [
                connect_v1.ServiceASGIApplication(v1, read_max_bytes=read_max_bytes),
                connect_v2.ServiceASGIApplication(v2, read_max_bytes=read_max_bytes),
            ]
        )
        self._config = uvicorn.Config(
            self._router,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            interface="asgi3",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,  # the peer is the connection's (per-connection stream limit)
            timeout_keep_alive=max(1, round(streams.limits.idle_timeout)),
            limit_concurrency=max_concurrent_calls or None,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            **_tls_options(tls),
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def address(self) -> str:
        host = split_host_port(self._listen)[0]
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> int:
        """Bind and serve; returns the bound port. Raises OSError if the address is unusable."""
        host, port = split_host_port(self._listen)
        try:
            self._config.load()  # reads the TLS files: a bad one fails here, not in the thread
        except (OSError, ssl.SSLError) as error:
            raise OSError(f"cannot listen on {self._listen} (flagd Connect): TLS: {error}") from None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on connections of a socket that says so,
        # and without it every keep-alive call waited out the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            raise OSError(
                f"cannot listen on {self._listen} (flagd Connect): {error.strerror or error}"
            ) from None
        self.port = sock.getsockname()[1]
        server = self._server = uvicorn.Server(self._config)
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as error:  # reported by start(), or logged after it
                failure.append(error)
                logger.exception("the flagd Connect listener stopped on an error")
            finally:
                sock.close()

        self._thread = threading.Thread(target=serve, name="flagd-connect", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            self.stop()
            raise OSError(f"cannot listen on {self._listen} (flagd Connect): {failure or 'did not start'}")
        logger.info(
            "flagd Connect protocol on %s (%s; HTTP/1.1; services: %s, %s)",
            self.address,
            "plaintext" if self._tls is None else "mutual TLS" if self._tls.client_ca else "TLS",
            SERVICE_NAME_V1,
            SERVICE_NAME_V2,
            extra={"event": "flagd_connect_listening"},
        )
        return self.port

    def stop(self, grace: float = 0.0) -> None:
        """Stop accepting, give open calls up to `grace` seconds, then close every connection.
        EventStreams have ended by then: FlagdServices.shutdown runs first (SidecarServer)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        # Whole seconds, and at least one: uvicorn's wait for the open connections (it ends as soon
        # as they have) times out at once on 0, logging an error even with nothing open.
        server.config.timeout_graceful_shutdown = max(1, math.ceil(grace))
        server.should_exit = True
        thread.join(grace + 5.0)
        if thread.is_alive():
            server.force_exit = True
            with contextlib.suppress(RuntimeError):
                thread.join(1.0)
        self._threads.shutdown(wait=False)
        self._server = self._thread = None
        logger.info("flagd Connect listener stopped")


def _tls_options(tls: TlsFiles | None) -> dict[str, Any]:
    """uvicorn.Config's TLS settings for `tls` (a client certificate required with a client CA)."""
    if tls is None:
        return {}
    return {
        "ssl_certfile": str(tls.cert),
        "ssl_keyfile": str(tls.key),
        "ssl_ca_certs": None if tls.client_ca is None else str(tls.client_ca),
        "ssl_cert_reqs": ssl.CERT_NONE if tls.client_ca is None else ssl.CERT_REQUIRED,
    }
