"""Liveness that means "the gRPC server answers calls", not "the process exists".

A flag in memory says nothing about grpcio's polling thread or worker pool: a server wedged by a
deadlock in a servicer answered nothing for good while /healthz said 200. `LivenessProbe` makes a
real call, Health/Check(service="liveness"), on the server's own listener every `interval`, with a
short deadline, from a thread of its own. The process counts as alive while the last successful
call is at most `stale_after` old; /healthz (management.py) and the gRPC `liveness` health status
report that, so a wedged server gets restarted by its liveness probe.

The probe stops when shutdown begins: calls are refused from then on by design, and liveness
stays SERVING during the drain (--shutdown-timeout bounds the drain instead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import grpc
from grpc_health.v1 import health_pb2

logger = logging.getLogger(__name__)

LIVENESS_SERVICE: Final = "liveness"
DEFAULT_PROBE_INTERVAL: Final = 2.0
DEFAULT_PROBE_DEADLINE: Final = 2.0
# Several missed probes in a row, so one slow call (a GC pause, a busy machine) is no restart.
DEFAULT_STALE_AFTER: Final = 10.0


class LivenessProbe:
    """Calls Health/Check on `target` (a plaintext address of the server itself) periodically.

    `on_change(alive)` is called from the probe thread when the verdict changes."""

    def __init__(
        self,
        target: str,
        *,
        interval: float = DEFAULT_PROBE_INTERVAL,
        deadline: float = DEFAULT_PROBE_DEADLINE,
        stale_after: float = DEFAULT_STALE_AFTER,
        on_change: Callable[[bool], None] = lambda _alive: None,
    ) -> None:
        self.target = target
        self._interval = interval
        self._deadline = deadline
        self._stale_after = stale_after
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_success = time.monotonic()
        self._last_error = ""
        self._alive = True
        self.failures = 0  # probe calls that failed, for /metrics

    def start(self) -> None:
        self._last_success = time.monotonic()  # the first probe has `stale_after` to succeed
        self._thread = threading.Thread(target=self._run, name="liveness-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """From now on the verdict is "alive" (shutdown has begun)."""
        self._stop.set()

    def problem(self) -> str | None:
        """Why the server counts as not alive, or None. Computed from the last success's age, so it
        is right even when the probe thread itself is stuck."""
        if self._thread is None or self._stop.is_set():
            return None
        age = time.monotonic() - self._last_success
        if age <= self._stale_after:
            return None
        detail = f" ({self._last_error})" if self._last_error else ""
        return f"the gRPC server has not answered a health check on {self.target} for {age:.0f}s{detail}"

    def _run(self) -> None:
        # No proxy: the target is this process, and an HTTP(S)_PROXY variable must not reroute it.
        channel = grpc.insecure_channel(self.target, options=[("grpc.enable_http_proxy", 0)])
        # The method itself rather than HealthStub: the type stubs declare no methods on the stub.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        request = health_pb2.HealthCheckRequest(service=LIVENESS_SERVICE)
        try:
            while not self._stop.wait(self._interval):
                try:
                    check(request, timeout=self._deadline)
                except grpc.RpcError as error:
                    self.failures += 1
                    self._last_error = f"{error.code().name}: {error.details()}"
                    logger.warning("liveness probe on %s failed: %s", self.target, self._last_error)
                else:
                    self._last_success = time.monotonic()
                    self._last_error = ""
                if self._stop.is_set():
                    return
                self._report(self.problem() is None)
        finally:
            channel.close()

    def _report(self, alive: bool) -> None:
        if alive == self._alive:
            return
        self._alive = alive
        if alive:
            logger.info("the gRPC server answers again", extra={"event": "liveness_restored"})
        else:
            logger.error("%s", self.problem(), extra={"event": "liveness_failed"})
        try:
            self._on_change(alive)
        except Exception:
            logger.exception("liveness change handler failed")
