"""The gRPC server: every service the sidecar exposes, plus health and reflection."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sidecar.store import FlagSetChange, FlagStore

from . import evaluation_service
from .convert import EncodedEvaluations

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceDependencies:
    """What a service may need to be built. Grows as services need more (events, metrics...)."""

    store: FlagStore


@dataclass(frozen=True)
class RegisteredServices:
    """What a registrar added: full gRPC service names (for health and reflection), and cleanup."""

    names: tuple[str, ...]
    on_stop: Callable[[], None] = field(default=lambda: None)


# Adds one or more servicers to the server.
Registrar = Callable[[grpc.Server, ServiceDependencies], RegisteredServices]


def register_evaluation_service(server: grpc.Server, deps: ServiceDependencies) -> RegisteredServices:
    encoded = EncodedEvaluations()
    # Answers of a replaced flag set are never served again: drop them rather than wait for eviction.
    unsubscribe = deps.store.subscribe(lambda _change: encoded.clear())
    evaluation_service.add_to_server(evaluation_service.EvaluationService(deps.store, encoded), server)
    return RegisteredServices((evaluation_service.SERVICE_NAME,), on_stop=unsubscribe)


# ================================================================ SERVICE REGISTRY
# Every service the sidecar serves is added here, and only here; health and reflection pick the
# names up from what each registrar returns. Add the flagd-compatible services and EventService
# by appending their registrar.
SERVICE_REGISTRARS: tuple[Registrar, ...] = (register_evaluation_service,)
# ================================================================


class SidecarServer:
    """A grpcio (sync) server with the registered services, gRPC health and server reflection.

    Health reports SERVING for "" and every registered service once the store has a flag set, and
    NOT_SERVING from the moment shutdown starts, so load balancers stop routing before calls are
    refused.
    """

    def __init__(
        self,
        store: FlagStore,
        listen: str,
        *,
        max_workers: int = 8,
        registrars: Sequence[Registrar] = SERVICE_REGISTRARS,
    ) -> None:
        self._store = store
        self._listen = listen
        self._executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc")
        # No SO_REUSEPORT: a second sidecar on the same port must fail, not silently share the traffic.
        self._server = grpc.server(self._executor, options=[("grpc.so_reuseport", 0)])
        # Non-blocking: Watch streams do not each hold one of the server's worker threads.
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)

        deps = ServiceDependencies(store=store)
        registered = [register(self._server, deps) for register in registrars]
        self.service_names: tuple[str, ...] = tuple(name for r in registered for name in r.names)
        self._cleanups = [r.on_stop for r in registered]
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        self.port = 0
        self._unsubscribe_readiness: Callable[[], None] | None = None

    @property
    def address(self) -> str:
        """The listen address with the bound port (useful with port 0)."""
        host = self._listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    def start(self) -> int:
        """Bind and start serving; returns the bound port. Raises OSError if the address is unusable."""
        try:
            self.port = self._server.add_insecure_port(self._listen)
        except RuntimeError as error:  # grpcio raises RuntimeError when it cannot bind
            raise OSError(f"cannot listen on {self._listen}: {error}") from None
        if self.port == 0:
            raise OSError(f"cannot listen on {self._listen}")
        self._unsubscribe_readiness = self._store.subscribe(self._on_flag_set_change)
        self._update_health()
        self._server.start()
        logger.info("listening on %s (services: %s)", self.address, ", ".join(self.service_names))
        return self.port

    def stop(self, grace: float) -> None:
        """Report NOT_SERVING, let in-flight calls finish for up to `grace` seconds, then stop."""
        logger.info("shutting down: health NOT_SERVING, up to %gs for in-flight calls", grace)
        self.health.enter_graceful_shutdown()
        if self._unsubscribe_readiness is not None:
            self._unsubscribe_readiness()
        self._server.stop(grace).wait()
        for cleanup in self._cleanups:
            cleanup()
        self._executor.shutdown(wait=False)
        logger.info("server stopped")

    def wait(self, timeout: float | None = None) -> None:
        """Block until the server has stopped, or until `timeout` seconds have passed."""
        self._server.wait_for_termination(timeout)

    def _on_flag_set_change(self, _change: FlagSetChange) -> None:
        self._update_health()

    def _update_health(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self._store.ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service_names):
            self.health.set(name, status)
