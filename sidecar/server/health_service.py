"""grpcio's health servicer, with the `List` method that the health proto has and it lacks.

Reflection lists grpc.health.v1.Health/List, and grpcio-health-checking's servicer leaves it to the
generated base class, which answers UNIMPLEMENTED and logs a traceback per call. `List` here answers
every service a status was set for, each as `Check` would answer it (public API only: the servicer
keeps its statuses private).
"""

from __future__ import annotations

import threading
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

# types-grpcio-health-checking predates List's messages, which grpcio's health_pb2 has.
HealthListResponse: Any = health_pb2.HealthListResponse  # type: ignore[attr-defined]


class SidecarHealth(health.HealthServicer):
    """Blocking Watch (grpcio's non-blocking one sends under the servicer's lock, and a Watch
    cancelled meanwhile needs that lock on grpcio's polling thread, which must complete the send: a
    deadlock that froze the whole server), and List."""

    def __init__(self) -> None:
        super().__init__(experimental_non_blocking=False)
        self._names: set[str] = {""}  # "" is SERVING from construction, as in grpcio's servicer
        self._names_lock = threading.Lock()

    def set(self, service: str, status: Any) -> None:
        with self._names_lock:
            self._names.add(service)
        super().set(service, status)

    def List(  # the generated servicer's method name
        self, request: Any, context: grpc.ServicerContext
    ) -> Any:
        with self._names_lock:
            names = sorted(self._names)
        statuses = {name: self.Check(health_pb2.HealthCheckRequest(service=name), context) for name in names}
        return HealthListResponse(statuses=statuses)
