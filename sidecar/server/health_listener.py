"""--health-listen: a second, small gRPC server that serves only grpc.health.v1.Health.

The evaluation API listens on loopback (or a Unix socket, or with TLS), and Kubernetes' `grpc:`
probes can reach none of these: the kubelet dials the pod IP in plaintext. This listener gives
the probes a port of their own without exposing anything else: no evaluation services, no
reflection (any other method is UNIMPLEMENTED), always plaintext.

It serves the main server's HealthServicer instance itself (grpcio lets one servicer be added to
several servers: statuses, Check and Watch are shared), so both ports always say the same thing:
"" and every registered service are readiness, `liveness` is SERVING until the process exits.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from . import decoding
from .listeners import BoundAddress, bind
from .streams import StreamAdmission, StreamLimits

logger = logging.getLogger(__name__)

# Probes are a Check every few seconds: two workers are plenty. A Watch holds a worker of its own
# for its life, so a few more, under their own stream limits (the main server's idle timeout and
# per-connection limit, at most HEALTH_MAX_WATCHES): Watches can never starve the probes' Checks.
# The limits keep a port reachable from the pod network cheap to poke at.
HEALTH_WORKERS = 2
HEALTH_MAX_WATCHES = 4
HEALTH_MAX_CONCURRENT_CALLS = 16
HEALTH_MAX_REQUEST_BYTES = 4096


class HealthServer:
    """Serves `servicer` (and nothing else) on `listen`, HOST:PORT (port 0: any free port)."""

    def __init__(
        self, servicer: health.HealthServicer, listen: str, stream_limits: StreamLimits | None = None
    ) -> None:
        self._listen = listen
        limits = StreamLimits() if stream_limits is None else stream_limits
        self.streams = StreamAdmission(
            StreamLimits(
                min(limits.max_streams, HEALTH_MAX_WATCHES),
                min(limits.max_per_peer, HEALTH_MAX_WATCHES),
                limits.idle_timeout,
            )
        )
        self._executor = futures.ThreadPoolExecutor(
            max_workers=HEALTH_WORKERS + self.streams.limits.max_streams, thread_name_prefix="grpc-health"
        )
        self._server = grpc.server(
            self._executor,
            # As the main server: a port in use is an error, not silently shared.
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", HEALTH_MAX_REQUEST_BYTES),
            ],
            maximum_concurrent_rpcs=HEALTH_MAX_CONCURRENT_CALLS,
        )
        # As on the main server: a malformed request is INVALID_ARGUMENT, Watch is a limited stream.
        decoding.add_servicer(
            health_pb2_grpc.add_HealthServicer_to_server, servicer, self._server, streams=self.streams
        )
        self.bound: BoundAddress | None = None

    @property
    def address(self) -> str:
        """HOST:PORT with the bound port (useful with port 0)."""
        return self.bound.address if self.bound is not None else self._listen

    @property
    def port(self) -> int:
        return self.bound.port if self.bound is not None else 0

    def start(self) -> int:
        """Bind (plaintext) and start serving; returns the port. Raises OSError if unusable."""
        try:
            self.bound = bind(self._server, self._listen, None)
        except OSError as error:  # say which listener, as the management listener does
            where = f"cannot listen on {self._listen}"
            raise OSError(str(error).replace(where, f"{where} (health)", 1)) from None
        self._server.start()
        logger.info(
            "gRPC health checks on %s (plaintext; %s only)",
            self.bound.address,
            health.SERVICE_NAME,
            extra={"event": "health_listening"},
        )
        return self.bound.port

    def stop(self, grace: float = 0.0) -> None:
        """Stop answering; open Watch streams are cancelled after `grace` seconds."""
        if self.bound is None:
            return
        self._server.stop(grace).wait(grace + 5.0)
        self.streams.close()
        self._executor.shutdown(wait=False)
        self.bound = None
        logger.info("health listener stopped")
