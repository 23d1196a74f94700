"""The sync listener (--sync-listen): flagsidecar.v1.SyncService and flagd's flagd.sync.v1
FlagSyncService (flagd_service.py) on a grpc.aio server, over one fan-out.

Why a server of its own: the main server is grpcio's sync server, where every open stream holds a
worker thread (streams.py), and a control plane holds a stream per sidecar and SDK of the fleet.
On grpc.aio a Watch is a coroutine: a thousand of them cost one thread (this server's event loop)
and their memory. A grpc.aio server and a sync one cannot share a server object, and cannot share
a port either: each binds its own listening socket (the sidecar binds without SO_REUSEPORT, and
with it the kernel would hand each connection to one of the two at random). So the sync listener
has its own address, flagd's way (`--sync-port`, 8015).

Keepalive (flagd issues #1998 and #2021: grpc's default enforcement, a ping at most every
5 minutes and none without a call, sent GOAWAY to providers pinging every 30 s on idle streams):
clients may ping every MIN_CLIENT_PING_INTERVAL, also with no call open; the server itself
pings each connection every KEEPALIVE_TIME to find dead ones, and the Watch heartbeat is data
on the stream, which resets the ping accounting of both sides.

The listener has its own stream admission (--sync-max-streams, --max-streams-per-connection),
reflection, and the same TLS as the other listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

import grpc
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection, reflection_pb2

from sidecar.store import FlagStore

from ..listeners import BoundAddress, TlsFiles, bind, remove_socket_files, server_credentials
from ..metrics import SidecarMetrics
from ..streams import StreamAdmission, StreamLimits
from .fanout import DEFAULT_LOG_SIZE, DEFAULT_QUEUE_SIZE, SyncFanout
from .flagd_service import SERVICE_NAME as FLAGD_SERVICE_NAME
from .flagd_service import SYNC_FLAGS_METHOD, FlagdSyncService
from .selector import DEFAULT_FLAG_SET
from .watch_service import (
    DEFAULT_HEARTBEAT_INTERVAL,
    FETCH_METHOD,
    SERVICE_NAME,
    WATCH_METHOD,
    SyncService,
)

logger = logging.getLogger(__name__)

MIN_CLIENT_PING_INTERVAL_MS: Final = 10_000
KEEPALIVE_TIME_MS: Final = 60_000
KEEPALIVE_TIMEOUT_MS: Final = 20_000
_START_TIMEOUT: Final = 30.0

# The server's channel arguments (module docstring: keepalive).
KEEPALIVE_OPTIONS: Final = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.http2.max_pings_without_data", 0),
)


class SyncServer:
    """The grpc.aio server of the sync listener, on an event loop thread of its own."""

    def __init__(
        self,
        store: FlagStore,
        listen: Sequence[str],
        *,
        tls: TlsFiles | None = None,
        stream_limits: StreamLimits | None = None,
        metrics: SidecarMetrics | None = None,
        handshake_timeout: float = 5.0,
        flag_set: str = DEFAULT_FLAG_SET,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        log_size: int = DEFAULT_LOG_SIZE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive: Sequence[tuple[str, int]] = KEEPALIVE_OPTIONS,
        static_context: Mapping[str, str] | None = None,
        header_properties: frozenset[str] = frozenset(),
    ) -> None:
        """`keepalive`: the server's keepalive channel arguments (KEEPALIVE_OPTIONS; a test scales
        them down). `static_context` and `header_properties`: flagd's context enrichment as the
        flagd services apply it (--context-value pairs; the keys --context-from-header fills),
        which flagd's sync protocol hands to in-process providers (flagd_service.py)."""
        self._store = store
        self._keepalive = tuple(keepalive)
        self._listen = tuple(listen)
        self._tls = tls
        self.streams = StreamAdmission(stream_limits)
        self._metrics = metrics
        self._handshake_timeout = handshake_timeout
        self._flag_set = flag_set
        self._heartbeat_interval = heartbeat_interval
        self._log_size = log_size
        self._queue_size = queue_size
        self._static_context = dict(static_context or {})
        self._header_properties = header_properties
        self.flagd: FlagdSyncService | None = None
        self.bound: list[BoundAddress] = []
        self.fanout: SyncFanout | None = None
        self.service: SyncService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None  # grpc.aio.Server
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: tuple[type[Exception], str] | None = None  # why start() failed
        self._stop_event: asyncio.Event | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(entry.address for entry in self.bound)

    def start(self) -> None:
        """Bind and serve. Raises OSError if an address is unusable or a TLS file unreadable."""
        credentials = server_credentials(self._tls) if self._tls is not None else None
        self._thread = threading.Thread(
            target=self._run, args=(credentials,), name="grpc-sync-loop", daemon=True
        )
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT):
            raise OSError("the sync listener did not start in time")
        if self._failure is not None:
            kind, message = self._failure
            self._thread.join(5)
            raise OSError(message) if issubclass(kind, OSError) else RuntimeError(message)
        if self._metrics is not None:
            self._metrics.add_stream_stats(self.streams.stats)
        for entry in self.bound:
            logger.info(
                "sync listener on %s (%s; services: %s)",
                entry.address,
                "TLS" if entry.tls else "plaintext",
                f"{SERVICE_NAME}, {FLAGD_SERVICE_NAME}",
                extra={"event": "sync_listening"},
            )

    def _run(self, credentials: grpc.ServerCredentials | None) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(credentials))
        except Exception:
            logger.exception("the sync listener failed")
        finally:
            loop.close()

    async def _serve(self, credentials: grpc.ServerCredentials | None) -> None:
        options: list[tuple[str, int]] = [("grpc.so_reuseport", 0), *self._keepalive]
        if self._handshake_timeout > 0:
            options.append(
                ("grpc.server_handshake_timeout_ms", max(1, round(self._handshake_timeout * 1000)))
            )
        server = grpc.aio.server(options=options)
        self._server = server
        self._stop_event = asyncio.Event()
        fanout = SyncFanout(
            self._store,
            asyncio.get_running_loop(),
            flag_set=self._flag_set,
            log_size=self._log_size,
            queue_size=self._queue_size,
        )
        self.fanout = fanout
        try:
            service = SyncService(fanout, self._heartbeat_interval, self.streams.limits.idle_timeout)
            self.service = service
            identity = _identity
            handlers = {
                "Watch": grpc.unary_stream_rpc_method_handler(
                    self.streams.guard_async(WATCH_METHOD, service.watch),
                    request_deserializer=identity,
                    response_serializer=identity,
                ),
                "Fetch": grpc.unary_unary_rpc_method_handler(
                    service.fetch, request_deserializer=identity, response_serializer=identity
                ),
            }
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
            flagd = FlagdSyncService(
                fanout, self._static_context, self._header_properties, self.streams.limits.idle_timeout
            )
            self.flagd = flagd
            flagd_handlers = {
                "SyncFlags": grpc.unary_stream_rpc_method_handler(
                    self.streams.guard_async(SYNC_FLAGS_METHOD, flagd.sync_flags),
                    request_deserializer=identity,
                    response_serializer=identity,
                ),
                "FetchAllFlags": grpc.unary_unary_rpc_method_handler(
                    flagd.fetch_all_flags, request_deserializer=identity, response_serializer=identity
                ),
                "GetMetadata": grpc.unary_unary_rpc_method_handler(
                    flagd.get_metadata, request_deserializer=identity, response_serializer=identity
                ),
            }
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(FLAGD_SERVICE_NAME, flagd_handlers),)
            )
            server.add_generic_rpc_handlers((self._reflection(),))
            self.bound = [bind(server, address, credentials) for address in self._listen]
            await server.start()
        except Exception as error:
            # Kept as text: an exception that left the coroutine would sit in a reference cycle
            # (its traceback, the task, the exception) holding the aio server, and with it
            # grpc.aio's poller thread, until the garbage collector came by.
            fanout.close()
            self._server = None
            self._failure = (type(error), str(error))
            self._started.set()
            return
        del server
        self._started.set()
        await self._stop_event.wait()

    def _reflection(self) -> grpc.GenericRpcHandler:
        """grpc_reflection's aio servicer, with the requests decoded here: its own decoding answers a
        malformed one INTERNAL and logs a traceback (as on the main server: decoding.py)."""
        servicer = reflection.aio.ReflectionServicer(
            (SERVICE_NAME, FLAGD_SERVICE_NAME, reflection.SERVICE_NAME)
        )
        method = f"{reflection.SERVICE_NAME}/ServerReflectionInfo"

        async def info(requests: Any, context: Any) -> Any:
            async def decoded() -> Any:
                async for data in requests:
                    try:
                        yield reflection_pb2.ServerReflectionRequest.FromString(data)
                    except DecodeError as error:
                        await context.abort(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            f"the request is not a valid ServerReflectionRequest: {error}",
                        )

            # An async generator (the stubs call it a coroutine returning an iterable).
            responses: Any = servicer.ServerReflectionInfo(decoded(), context)
            async for response in responses:
                yield response

        handler = grpc.stream_stream_rpc_method_handler(
            self.streams.guard_async(method, info),
            request_deserializer=_identity,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(
            reflection.SERVICE_NAME, {"ServerReflectionInfo": handler}
        )

    def begin_shutdown(self) -> None:
        """End every Watch (UNAVAILABLE: its client reconnects, to another replica or to this one
        once it is back); Fetch is still answered until stop()."""
        loop, fanout = self._loop, self.fanout
        if loop is not None and fanout is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fanout.close)

    def stop(self, grace: float = 0.0) -> None:
        """Stop serving (in-flight calls get up to `grace` seconds) and end the loop thread."""
        self.begin_shutdown()
        loop, server = self._loop, self._server
        if loop is not None and server is not None and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self._stop(grace), loop).result(grace + 5.0)
            except Exception:
                logger.warning("the sync listener did not stop in time", exc_info=True)
        if self._thread is not None:
            self._thread.join(5)
        remove_socket_files(self.bound)

    async def _stop(self, grace: float) -> None:
        await self._server.stop(grace)
        # grpc.aio's poller thread lives while any aio server object does: drop ours.
        self._server = None
        assert self._stop_event is not None
        self._stop_event.set()


def _identity(data: bytes) -> bytes:
    return data


__all__ = ["FETCH_METHOD", "KEEPALIVE_OPTIONS", "SyncServer"]
