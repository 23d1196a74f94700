"""A serving path that answers nothing fails liveness (sidecar.server.liveness): /healthz and the
gRPC `liveness` service follow a real loopback call through the server, not a flag in memory; they
recover when the server answers again, and stay alive through shutdown."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.exposition import generate_latest

from sidecar.server.app import SERVICE_REGISTRARS, SidecarServer
from sidecar.server.health_listener import HealthServer
from sidecar.server.management import ManagementServer
from sidecar.server.metrics import SidecarMetrics
from sidecar.server.streams import StreamLimits
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import SAMPLE_FLAGS, eventually, write_flag_file
from tests.ops.test_limits_and_listeners import GATE_SERVICE, Gate

FAST_PROBE = {"interval": 0.1, "deadline": 0.3, "stale_after": 0.8}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def healthz(base: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Wedged:
    """A sidecar whose every worker can be taken by calls that block (one unary worker, one stream
    slot), with its management and health listeners."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = FlagStore(FileSource(write_flag_file(tmp_path / "flags.yaml", SAMPLE_FLAGS)))
        self.store.start()
        self.gate = Gate()
        self.metrics = SidecarMetrics(self.store, process_metrics=False)
        self.server = SidecarServer(
            self.store,
            "127.0.0.1:0",
            max_workers=1,
            stream_limits=StreamLimits(max_streams=1, max_per_peer=1),
            registrars=(*SERVICE_REGISTRARS, self.gate),
            metrics=self.metrics,
            liveness=FAST_PROBE,
        )
        self.server.start()
        self.management = ManagementServer("127.0.0.1:0", store=self.store)
        self.management.start()
        self.management.mark_serving(liveness=self.server.liveness_problem)
        self.base = f"http://{self.management.address}"
        self.health = HealthServer(self.server.health, "127.0.0.1:0")
        self.health.start()
        self.health_channel = grpc.insecure_channel(self.health.address)
        self.channel = grpc.insecure_channel(self.server.address)
        self._pool = futures.ThreadPoolExecutor(2)

    def liveness_status(self) -> int:
        request = health_pb2.HealthCheckRequest(service="liveness")
        return health_pb2_grpc.HealthStub(self.health_channel).Check(request, timeout=2).status

    def take_every_worker(self) -> None:
        call = self.channel.unary_unary(f"/{GATE_SERVICE}/Pass")
        for _ in range(2):
            self._pool.submit(call, b"", timeout=10)
        for _ in range(2):
            assert self.gate.waiting.acquire(timeout=5)

    def close(self) -> None:
        self.gate.open.set()
        self._pool.shutdown()
        self.channel.close()
        self.health_channel.close()
        self.health.stop()
        self.management.stop()
        self.server.stop(0)
        self.store.close()


@pytest.fixture
def wedged(tmp_path: Path) -> Iterator[Wedged]:
    sidecar = Wedged(tmp_path)
    yield sidecar
    sidecar.close()


def test_a_server_that_answers_nothing_fails_liveness_and_recovers(wedged):
    eventually(lambda: wedged.server.liveness is not None and wedged.server.liveness.failures == 0)
    assert healthz(wedged.base) == (200, "ok\n")
    assert wedged.liveness_status() == SERVING

    wedged.take_every_worker()  # a wedge: nothing the server is sent gets a worker
    _code, body = eventually(lambda: (reply := healthz(wedged.base))[0] == 503 and reply, timeout=5)
    assert body.startswith("not alive: the gRPC server has not answered a health check on 127.0.0.1:")
    assert "DEADLINE_EXCEEDED" in body
    eventually(lambda: wedged.liveness_status() == NOT_SERVING, timeout=5)
    exposition = generate_latest(wedged.metrics.registry).decode()
    assert "flag_sidecar_grpc_alive 0.0" in exposition
    assert "flag_sidecar_liveness_probe_failures_total" in exposition

    wedged.gate.open.set()
    eventually(lambda: healthz(wedged.base)[0] == 200, timeout=5)
    eventually(lambda: wedged.liveness_status() == SERVING, timeout=5)
    assert "flag_sidecar_grpc_alive 1.0" in generate_latest(wedged.metrics.registry).decode()


def test_liveness_stays_alive_through_shutdown(wedged):
    wedged.server.begin_shutdown()  # the server refuses calls from here on: no liveness failure
    wedged.take_every_worker()
    ends = time.monotonic() + 3 * FAST_PROBE["stale_after"]
    while time.monotonic() < ends:
        assert healthz(wedged.base) == (200, "ok\n")
        time.sleep(0.05)
    assert wedged.liveness_status() == SERVING
