"""The gRPC server: every service the sidecar exposes, plus health and reflection."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from flagsidecar.v1 import event_pb2_grpc
from sidecar.events import EventPipeline
from sidecar.store import FlagSetChange, FlagStore, SourceStatus

from . import decoding, evaluation_service, event_service
from .convert import EncodedEvaluations
from .flagd import FlagdServices, FlagdSettings
from .health_service import SidecarHealth
from .limits import ContextLimits
from .listeners import BoundAddress, TlsFiles, bind, remove_socket_files, server_credentials
from .liveness import LIVENESS_SERVICE, LivenessProbe
from .metrics import NULL_METRICS, NullMetrics, SidecarMetrics
from .streams import StreamAdmission, StreamLimits

logger = logging.getLogger(__name__)

DEFAULT_HANDSHAKE_TIMEOUT = 5.0  # seconds; a local handshake takes milliseconds
# LIVENESS_SERVICE, the health service name that says "this server answers calls": SERVING while
# the loopback probe (liveness.py) gets answers, and throughout the drain on SIGTERM (a failing
# liveness probe would get the container killed mid-drain and cut in-flight calls). "" and every
# registered service are readiness instead.
# SOURCE_SERVICE says whether the flag source can be had: NOT_SERVING while the last good set is
# served without it (readiness stays SERVING then: a stale set is still served).
SOURCE_SERVICE = "flag-source"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class ServiceDependencies:
    """What a service may need to be built. Grows as services need more (events, metrics...)."""

    store: FlagStore
    metrics: SidecarMetrics | NullMetrics = NULL_METRICS
    context_limits: ContextLimits = field(default_factory=ContextLimits)
    # Evaluation and tracking events; a pipeline without exporters records nothing.
    events: EventPipeline = field(default_factory=EventPipeline)
    # flagd's protocol: context enrichment (--context-value, --context-from-header), EventStream limits.
    flagd: FlagdSettings = field(default_factory=FlagdSettings)
    # Every streaming method is registered under these limits (decoding.add_servicer(streams=...)).
    streams: StreamAdmission = field(default_factory=StreamAdmission)


@dataclass(frozen=True)
class RegisteredServices:
    """What a registrar added: full gRPC service names (for health and reflection), and cleanup."""

    names: tuple[str, ...]
    on_stop: Callable[[], None] = field(default=lambda: None)
    # Runs when shutdown begins, before the server stops waiting for in-flight calls: a
    # long-lived stream (flagd's EventStream) says goodbye and ends here, or it would hold the
    # whole grace period.
    on_shutdown: Callable[[], None] = field(default=lambda: None)
    # The flagd services, which the flagd Connect listener (--flagd-connect-listen) serves too.
    flagd: FlagdServices | None = None


# Adds one or more servicers to the server.
Registrar = Callable[[grpc.Server, ServiceDependencies], RegisteredServices]


def register_evaluation_service(server: grpc.Server, deps: ServiceDependencies) -> RegisteredServices:
    encoded = EncodedEvaluations()
    # Answers of a replaced flag set are never served again: drop them rather than wait for eviction.
    unsubscribe = deps.store.subscribe(lambda _change: encoded.clear())
    servicer = evaluation_service.EvaluationService(
        deps.store, encoded, deps.metrics, deps.context_limits, deps.events
    )
    evaluation_service.add_to_server(servicer, server)
    return RegisteredServices((evaluation_service.SERVICE_NAME,), on_stop=unsubscribe)


def register_event_service(server: grpc.Server, deps: ServiceDependencies) -> RegisteredServices:
    servicer = event_service.EventService(deps.events, deps.context_limits)
    decoding.add_servicer(
        event_pb2_grpc.add_EventServiceServicer_to_server,
        servicer,
        server,
        _undecodable_track_message,
        streams=deps.streams,
    )
    return RegisteredServices((event_service.SERVICE_NAME,))


def _undecodable_track_message(failure: decoding.UndecodableRequest) -> str | None:
    """A Track message that does not parse ends the stream as Track's own errors do: the events
    before it were accepted (Track accepts each message it is given or ends the call), and their
    number is in the accepted-count trailing metadata and in the status message."""
    if failure.method != "Track":
        return None
    accepted = failure.decoded_before
    failure.context.set_trailing_metadata(((event_service.ACCEPTED_METADATA, str(accepted)),))
    return f"({accepted} events of this stream were accepted)"


def register_flagd_services(server: grpc.Server, deps: ServiceDependencies) -> RegisteredServices:
    """flagd.evaluation.v1 and v2, for OpenFeature's flagd providers (sidecar/server/flagd)."""
    services = FlagdServices(
        deps.store,
        deps.flagd,
        events=deps.events,
        metrics=deps.metrics,
        context_limits=deps.context_limits,
    )
    names = services.add_to_server(server, deps.streams)
    # EventStreams never end by themselves: they send provider_shutdown and end when shutdown begins.
    return RegisteredServices(names, on_stop=services.close, on_shutdown=services.shutdown, flagd=services)


# ================================================================ SERVICE REGISTRY
# Every service the sidecar serves is added here, and only here; health and reflection pick the
# names up from what each registrar returns. Add the flagd-compatible services and EventService
# by appending their registrar.
SERVICE_REGISTRARS: tuple[Registrar, ...] = (
    register_evaluation_service,
    register_event_service,
    register_flagd_services,
)
# ================================================================


class SidecarServer:
    """A grpcio (sync) server with the registered services, gRPC health and server reflection.

    Health reports SERVING for "" and every registered service once the server has started and
    the store has a flag set, and NOT_SERVING before that and from the moment shutdown starts, so
    load balancers stop routing before calls are refused. LIVENESS_SERVICE is SERVING throughout.
    `health` is the servicer; HealthServer (sidecar/server/health_listener.py) serves the same
    instance on a health-only listener.

    `listen` is one address or several: HOST:PORT (TLS when `tls` is given) or unix:///path
    (always plaintext). `max_request_bytes` and `max_concurrent_calls` are enforced by grpcio
    itself (RESOURCE_EXHAUSTED); 0 or None means grpcio's default / no limit. A connection that has
    not finished its handshake (TLS, then HTTP/2 settings) within `handshake_timeout` seconds is
    closed (grpcio's own default is 120 s, so half-open connections would pile up).

    Capacity: `max_workers` threads for unary calls plus one per stream `stream_limits` admits
    (streams.py), so open streams never take the unary workers. Liveness: `liveness` settings
    for the LivenessProbe (liveness.py; None: defaults), which calls this server itself.
    """

    def __init__(
        self,
        store: FlagStore,
        listen: str | Sequence[str],
        *,
        max_workers: int = 8,
        registrars: Sequence[Registrar] = SERVICE_REGISTRARS,
        tls: TlsFiles | None = None,
        max_request_bytes: int | None = None,
        max_concurrent_calls: int | None = None,
        metrics: SidecarMetrics | None = None,
        context_limits: ContextLimits | None = None,
        events: EventPipeline | None = None,
        flagd: FlagdSettings | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        stream_limits: StreamLimits | None = None,
        liveness: dict[str, float] | None = None,
    ) -> None:
        self._store = store
        self._listen: tuple[str, ...] = (listen,) if isinstance(listen, str) else tuple(listen)
        self._tls = tls
        flagd = FlagdSettings() if flagd is None else flagd
        self.streams = StreamAdmission(stream_limits)
        # Every open stream holds a worker thread for its whole life, and admission lets at most
        # max_streams be open: that many on top, so the unary calls always keep max_workers.
        self._workers: list[threading.Thread] = []  # each worker adds itself when it starts
        self._executor = futures.ThreadPoolExecutor(
            max_workers=max_workers + self.streams.limits.max_streams,
            thread_name_prefix="grpc",
            initializer=lambda: self._workers.append(threading.current_thread()),
        )
        # No SO_REUSEPORT: a second sidecar on the same port must fail, not silently share the traffic.
        options: list[tuple[str, int]] = [("grpc.so_reuseport", 0)]
        if max_request_bytes:
            options.append(("grpc.max_receive_message_length", max_request_bytes))
        if handshake_timeout > 0:
            options.append(("grpc.server_handshake_timeout_ms", max(1, round(handshake_timeout * 1000))))
        self._server = grpc.server(
            self._executor, options=options, maximum_concurrent_rpcs=max_concurrent_calls or None
        )
        # A blocking Watch, a stream like any other (health_service.py says why), and List.
        self.health = SidecarHealth()
        decoding.add_servicer(
            health_pb2_grpc.add_HealthServicer_to_server, self.health, self._server, streams=self.streams
        )
        # Guards readiness against a reload racing the start of shutdown: once shutting down, no
        # flag-set change can turn it back to SERVING.
        self._health_lock = threading.Lock()

        deps = ServiceDependencies(
            store=store,
            metrics=NULL_METRICS if metrics is None else metrics,
            context_limits=ContextLimits() if context_limits is None else context_limits,
            events=EventPipeline() if events is None else events,
            flagd=flagd,
            streams=self.streams,
        )
        registered = [register(self._server, deps) for register in registrars]
        self.service_names: tuple[str, ...] = tuple(name for r in registered for name in r.names)
        self._cleanups = [r.on_stop for r in registered]
        self._shutdown_hooks = [r.on_shutdown for r in registered]
        # What another listener of the flagd protocol serves (None: no flagd registrar).
        self.flagd_services: FlagdServices | None = next(
            (r.flagd for r in registered if r.flagd is not None), None
        )
        # reflection.enable_server_reflection() registers the same servicer without our decoding
        # (a malformed request: INTERNAL and a traceback) nor the stream limits.
        decoding.add_servicer(
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server,
            reflection.ReflectionServicer(
                (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
            ),
            self._server,
            streams=self.streams,
        )
        if metrics is not None:
            metrics.add_stream_stats(self.streams.stats)
        self._metrics = metrics
        self._liveness_settings = liveness or {}
        self.liveness: LivenessProbe | None = None
        self._probe_dir: str | None = None
        self.port = 0
        self.bound: list[BoundAddress] = []
        self._unsubscribe_readiness: Callable[[], None] | None = None
        self._shutting_down = False
        # grpcio's servicer starts with "" SERVING: not ready until start(), alive from now on.
        self._set_readiness(_NOT_SERVING)
        self.health.set(LIVENESS_SERVICE, _SERVING)
        self._on_source_status(store.source_status)
        self._unsubscribe_source = store.health.subscribe(self._on_source_status)

    @property
    def address(self) -> str:
        """The first listen address, with the bound port (useful with port 0)."""
        return self.bound[0].address if self.bound else self._listen[0]

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(entry.address for entry in self.bound)

    def start(self) -> int:
        """Bind and start serving; returns the first TCP port bound (0 if only Unix sockets).
        Raises OSError if an address is unusable or a TLS file cannot be read."""
        credentials = server_credentials(self._tls) if self._tls is not None else None
        self.bound = [bind(self._server, address, credentials) for address in self._listen]
        self.port = next((entry.port for entry in self.bound if entry.port), 0)
        probe_target = self._probe_target()
        self._unsubscribe_readiness = self._store.subscribe(self._on_flag_set_change)
        self._update_health()
        self._server.start()
        self.liveness = LivenessProbe(probe_target, on_change=self._on_liveness, **self._liveness_settings)
        if self._metrics is not None:
            self._metrics.add_liveness_probe(self.liveness)
        self.liveness.start()
        mode = "plaintext" if self._tls is None else "mutual TLS" if self._tls.client_ca else "TLS"
        for entry in self.bound:
            logger.info(
                "listening on %s (%s; services: %s)",
                entry.address,
                mode if entry.tls else "plaintext",
                ", ".join(self.service_names),
                extra={"event": "listening"},
            )
        return self.port

    def begin_shutdown(self) -> None:
        """Readiness ("" and every service) NOT_SERVING for good and long-lived streams told to
        end; calls are still answered, and LIVENESS_SERVICE stays SERVING.

        Not grpcio's enter_graceful_shutdown(): that marks every name NOT_SERVING, liveness too."""
        with self._health_lock:
            if self._shutting_down:
                return
            self._shutting_down = True
            self._set_readiness(_NOT_SERVING)
            if self.liveness is not None:
                self.liveness.stop()  # calls are refused from now on: that is no liveness failure
            self.health.set(LIVENESS_SERVICE, _SERVING)
        if self._unsubscribe_readiness is not None:
            self._unsubscribe_readiness()
        for hook in self._shutdown_hooks:
            try:
                hook()
            except Exception:
                logger.exception("a service's shutdown hook failed")

    def stop(self, grace: float, timeout: float | None = None) -> None:
        """Report readiness NOT_SERVING, refuse new calls, let in-flight ones finish for up to `grace`
        seconds, then stop; return after `timeout` seconds (default: grace + 5) even if grpcio has
        not finished stopping, so that the caller's own deadline holds."""
        logger.info(
            "shutting down: health NOT_SERVING (%s stays SERVING), up to %gs for in-flight calls",
            LIVENESS_SERVICE,
            grace,
        )
        self.begin_shutdown()
        if not self._server.stop(grace).wait(grace + 5.0 if timeout is None else timeout):
            logger.warning(
                "the gRPC server did not finish stopping in time; going on with the shutdown",
                extra={"event": "grpc_stop_timeout"},
            )
        self.streams.close()
        self._unsubscribe_source()
        for cleanup in self._cleanups:
            cleanup()
        self._executor.shutdown(wait=False)
        remove_socket_files(self.bound)
        if self._probe_dir is not None:
            shutil.rmtree(self._probe_dir, ignore_errors=True)
        logger.info("server stopped")

    def liveness_problem(self) -> str | None:
        """Why the server does not count as alive (its own calls are not answered), or None."""
        return None if self.liveness is None else self.liveness.problem()

    def _probe_target(self) -> str:
        """A plaintext address of this server for the liveness probe: a listener of its own when
        there is one, else a private Unix socket (every TCP listener has TLS)."""
        for entry in self.bound:
            if entry.tls:
                continue
            if entry.unix_path is not None:
                return entry.address
            host = entry.address.rpartition(":")[0]
            loopback = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
            return f"{loopback}:{entry.port}"
        self._probe_dir = tempfile.mkdtemp(prefix="flag-sidecar-probe-")
        os.chmod(self._probe_dir, 0o700)  # only this user reaches the socket inside
        path = os.path.join(self._probe_dir, "grpc.sock")
        self._server.add_insecure_port(f"unix://{path}")
        return f"unix://{path}"

    def _on_liveness(self, alive: bool) -> None:
        with self._health_lock:  # from the start of shutdown on, liveness stays SERVING
            if not self._shutting_down:
                self.health.set(LIVENESS_SERVICE, _SERVING if alive else _NOT_SERVING)

    def join_handlers(self, timeout: float) -> bool:
        """After stop(): wait up to `timeout` seconds for the worker threads to end, and say whether
        they all did. grpcio cancels the calls still running when the grace ends, but it cannot
        interrupt their Python code, and the interpreter's exit would wait for those threads."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.is_alive() for worker in self._workers)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the server has stopped, or until `timeout` seconds have passed."""
        self._server.wait_for_termination(timeout)

    def _on_source_status(self, status: SourceStatus) -> None:
        self.health.set(SOURCE_SERVICE, _SERVING if status.up else _NOT_SERVING)

    def _on_flag_set_change(self, _change: FlagSetChange) -> None:
        self._update_health()

    def _update_health(self) -> None:
        with self._health_lock:
            if not self._shutting_down:  # from then on readiness stays NOT_SERVING
                self._set_readiness(_SERVING if self._store.ready else _NOT_SERVING)

    def _set_readiness(self, status: int) -> None:  # a HealthCheckResponse.ServingStatus
        for name in ("", *self.service_names):
            self.health.set(name, status)
