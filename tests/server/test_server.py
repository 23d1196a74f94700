"""SidecarServer: health, reflection, the service registry, graceful stop."""

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.server.app import LIVENESS_SERVICE, SERVICE_REGISTRARS, RegisteredServices, SidecarServer
from sidecar.server.health_listener import HealthServer
from sidecar.sources import FileSource
from sidecar.store import FlagStore

EVALUATION_SERVICE = "flagsidecar.v1.EvaluationService"
SLOW_SERVICE = "test.Slow"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def health_of(sidecar, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(sidecar.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_is_serving_overall_and_per_service(sidecar):
    assert health_of(sidecar) == SERVING
    assert health_of(sidecar, EVALUATION_SERVICE) == SERVING


def test_health_list_answers_every_service_as_check_does(sidecar):
    # grpcio's health servicer has no List (UNIMPLEMENTED and a traceback), though reflection lists it.
    stub = health_pb2_grpc.HealthStub(sidecar.channel)
    statuses = stub.List(health_pb2.HealthListRequest(), timeout=5).statuses
    assert {"", "liveness", EVALUATION_SERVICE} <= set(statuses)
    assert {name: answer.status for name, answer in statuses.items()} == {
        name: health_of(sidecar, name) for name in statuses
    }


def test_reflection_lists_every_service(sidecar):
    database = ProtoReflectionDescriptorDatabase(sidecar.channel)
    services = set(database.get_services())
    assert {
        EVALUATION_SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services
    # Enough for grpcurl to build requests without the .proto files.
    descriptor = database.FindFileContainingSymbol(EVALUATION_SERVICE)
    assert descriptor.package == "flagsidecar.v1"


def test_port_zero_binds_a_real_port(sidecar):
    assert sidecar.server.port > 0
    assert sidecar.address == f"127.0.0.1:{sidecar.server.port}"


def test_unusable_address_is_an_os_error(sample_flag_file):
    store = FlagStore(FileSource(sample_flag_file))
    store.start()
    try:
        with pytest.raises(OSError, match=r"cannot listen on 256\.1\.1\.1:1"):
            SidecarServer(store, "256.1.1.1:1").start()
    finally:
        store.close()


def test_a_port_in_use_is_refused_not_shared(sidecar):
    second = SidecarServer(sidecar.store, sidecar.address)
    with pytest.raises(OSError, match="cannot listen"):
        second.start()


@pytest.fixture
def unloaded_channel(sample_flag_file) -> Iterator[grpc.Channel]:
    """A channel to a started server whose store never loads a flag set."""
    store = FlagStore(FileSource(sample_flag_file))  # never started: nothing loaded
    server = SidecarServer(store, "127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            yield channel
    finally:
        server.stop(grace=0)
        store.close()


def test_health_is_not_serving_before_a_flag_set_is_loaded(unloaded_channel):
    stub = health_pb2_grpc.HealthStub(unloaded_channel)
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == NOT_SERVING
    evaluation_stub = evaluation_pb2_grpc.EvaluationServiceStub(unloaded_channel)
    with pytest.raises(grpc.RpcError) as caught:
        evaluation_stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="banner-color"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------- registry and graceful stop


class SlowCall:
    """A registrar adding /test.Slow/Wait: a unary call that takes `seconds` to answer."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()
        self.stopped_cleanly = False

    def __call__(self, server, deps) -> RegisteredServices:
        def wait(request: bytes, context) -> bytes:
            self.started.set()
            time.sleep(self.seconds)
            return b"done"

        handler = grpc.method_handlers_generic_handler(
            SLOW_SERVICE, {"Wait": grpc.unary_unary_rpc_method_handler(wait)}
        )
        server.add_generic_rpc_handlers((handler,))
        return RegisteredServices((SLOW_SERVICE,), on_stop=self._on_stop)

    def _on_stop(self) -> None:
        self.stopped_cleanly = True


def test_registered_services_get_health_and_cleanup(start_sidecar):
    slow = SlowCall(0)
    sidecar = start_sidecar(registrars=(*SERVICE_REGISTRARS, slow))
    assert health_of(sidecar, SLOW_SERVICE) == SERVING
    assert SLOW_SERVICE in sidecar.server.service_names
    sidecar.server.stop(grace=0)
    assert slow.stopped_cleanly


def test_stop_lets_an_in_flight_call_finish_and_reports_not_serving(start_sidecar):
    slow = SlowCall(0.5)
    sidecar = start_sidecar(registrars=(*SERVICE_REGISTRARS, slow))
    call = sidecar.channel.unary_unary(f"/{SLOW_SERVICE}/Wait").future(b"", timeout=10)
    assert slow.started.wait(5)

    # A client watching health sees NOT_SERVING as soon as the drain starts.
    watch = health_pb2_grpc.HealthStub(sidecar.channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
    assert next(watch).status == SERVING

    stopper = threading.Thread(target=sidecar.server.stop, args=(5,))
    stopper.start()
    assert next(watch).status == NOT_SERVING
    watch.cancel()  # an open Watch stream would otherwise hold the server for the whole grace period
    assert call.result() == b"done"  # the in-flight call completed during the grace period
    stopper.join(5)
    assert not stopper.is_alive()


def test_stop_cuts_calls_that_outlive_the_grace_period(start_sidecar):
    slow = SlowCall(3)
    sidecar = start_sidecar(registrars=(*SERVICE_REGISTRARS, slow))
    call = sidecar.channel.unary_unary(f"/{SLOW_SERVICE}/Wait").future(b"", timeout=10)
    assert slow.started.wait(5)
    began = time.monotonic()
    sidecar.server.stop(grace=0.2)
    assert time.monotonic() - began < 2
    with pytest.raises(grpc.RpcError):
        call.result()
    # The cut call's handler still runs (Python cannot interrupt it): join_handlers says so.
    assert not sidecar.server.join_handlers(0.2)
    assert sidecar.server.join_handlers(5)  # and says when it has ended (3 s after it started)


# ---------------------------------------------------------------- liveness and the health-only listener


def check(channel: grpc.Channel, service: str = "") -> int:
    return (
        health_pb2_grpc.HealthStub(channel)
        .Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        .status
    )


def test_liveness_is_serving_whatever_the_flags_and_readiness_is_not(unloaded_channel):
    assert check(unloaded_channel, LIVENESS_SERVICE) == SERVING
    assert check(unloaded_channel) == NOT_SERVING
    assert check(unloaded_channel, EVALUATION_SERVICE) == NOT_SERVING


def test_health_listener_shares_the_statuses_and_serves_nothing_else(sample_flag_file):
    store = FlagStore(FileSource(sample_flag_file))
    store.start()
    server = SidecarServer(store, "127.0.0.1:0")
    # Started before the main server, as `serve` does: not ready yet, but alive.
    health_server = HealthServer(server.health, "127.0.0.1:0")
    assert health_server.start() > 0
    channel = grpc.insecure_channel(health_server.address)
    try:
        assert (check(channel), check(channel, LIVENESS_SERVICE)) == (NOT_SERVING, SERVING)
        server.start()
        assert [check(channel, name) for name in ("", *server.service_names, LIVENESS_SERVICE)] == [
            SERVING
        ] * (len(server.service_names) + 2)
        with pytest.raises(grpc.RpcError) as caught:
            check(channel, "no.such.Service")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        # Only health here: no evaluation, no reflection.
        with pytest.raises(grpc.RpcError) as caught:
            evaluation_pb2_grpc.EvaluationServiceStub(channel).Evaluate(
                evaluation_pb2.EvaluateRequest(flag_key="banner-color"), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as caught:
            ProtoReflectionDescriptorDatabase(channel).get_services()
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED

        # Stopping the main server: readiness goes NOT_SERVING for good, liveness stays SERVING,
        # and the health listener keeps answering until it is stopped itself.
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        assert next(watch).status == SERVING
        server.stop(grace=0)
        assert next(watch).status == NOT_SERVING
        watch.cancel()
        server._update_health()  # a flag-set change racing shutdown cannot make it ready again
        assert [check(channel, name) for name in ("", EVALUATION_SERVICE, LIVENESS_SERVICE)] == [
            NOT_SERVING,
            NOT_SERVING,
            SERVING,
        ]
    finally:
        channel.close()
        health_server.stop()
        server.stop(grace=0)
        store.close()
    assert health_server.port == 0


def test_health_listener_on_a_port_in_use_is_an_os_error(sidecar):
    health_server = HealthServer(sidecar.server.health, sidecar.address)
    with pytest.raises(OSError, match=r"^cannot listen on 127\.0\.0\.1:\d+ \(health\): "):
        health_server.start()
