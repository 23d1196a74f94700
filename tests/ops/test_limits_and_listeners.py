"""Request limits (over-limit calls fail with the limit named, others keep being served) and
Unix-socket listeners."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.server.app import SERVICE_REGISTRARS, RegisteredServices, SidecarServer
from sidecar.server.flagd._generated import (
    evaluation_v1,
    evaluation_v1_grpc,
    evaluation_v2,
    evaluation_v2_grpc,
)
from sidecar.server.limits import ContextLimits, bounded
from sidecar.server.metrics import SidecarMetrics
from sidecar.store import FlagStore
from tests.conftest import eventually
from tests.server.test_evaluation_paths import RecordingEvents

GATE_SERVICE = "test.Gate"


class Gate:
    """A registrar adding /test.Gate/Pass: a unary call that blocks until the gate opens."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.waiting = threading.Semaphore(0)

    def __call__(self, server: grpc.Server, deps) -> RegisteredServices:
        def wait(request: bytes, context) -> bytes:
            self.waiting.release()
            self.open.wait(10)
            return b"passed"

        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    GATE_SERVICE, {"Pass": grpc.unary_unary_rpc_method_handler(wait)}
                ),
            )
        )
        return RegisteredServices((GATE_SERVICE,))


@pytest.fixture
def start_server(store: FlagStore) -> Iterator[Callable[..., SidecarServer]]:
    servers: list[SidecarServer] = []

    def start(listen: str | tuple[str, ...] = "127.0.0.1:0", **options) -> SidecarServer:
        server = SidecarServer(store, listen, **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(0)


def stub(target: str) -> evaluation_pb2_grpc.EvaluationServiceStub:
    return evaluation_pb2_grpc.EvaluationServiceStub(grpc.insecure_channel(target))


def request(context: dict | None = None, flag_key: str = "banner-color") -> evaluation_pb2.EvaluateRequest:
    message = evaluation_pb2.EvaluateRequest(flag_key=flag_key, user=evaluation_pb2.User(id="u1"))
    if context:
        message.user.context.update(context)
    return message


def failure(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------- limits


def test_oversized_request_is_resource_exhausted_with_the_limit(start_server) -> None:
    server = start_server(max_request_bytes=1024)
    client = stub(server.address)
    error = failure(lambda: client.Evaluate(request({"blob": "x" * 2000}), timeout=5))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # grpcio's own message carries the size and the limit: "Received message larger than max (N vs. 1024)".
    assert "1024" in error.details()
    assert client.Evaluate(request({"plan": "pro"}), timeout=5).evaluation.variant == "blue"


def test_context_key_and_byte_limits_are_invalid_argument(start_server) -> None:
    server = start_server(context_limits=ContextLimits(max_keys=64, max_bytes=300))
    client = stub(server.address)
    too_many = {f"k{i}": i for i in range(70)}
    error = failure(lambda: client.Evaluate(request(too_many), timeout=5))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "context has 70 keys; the limit is 64 (--max-context-keys)"
    all_error = failure(
        lambda: client.EvaluateAll(evaluation_pb2.EvaluateAllRequest(user=request(too_many).user), timeout=5)
    )
    assert all_error.details() == error.details()
    error = failure(lambda: client.Evaluate(request({"bio": "y" * 400}), timeout=5))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().endswith("; the limit is 300 bytes (--max-context-bytes)")
    assert client.Evaluate(request({"plan": "pro"}), timeout=5).evaluation.variant == "blue"


def test_no_context_limits() -> None:
    context = evaluation_pb2.User(id="u").context
    context.update({f"k{i}": "v" * 100 for i in range(1000)})
    assert ContextLimits(0, 0).violation(context) is None
    assert ContextLimits().violation(context) is not None


def test_excess_concurrent_calls_are_refused_and_service_resumes(start_server) -> None:
    gate = Gate()
    server = start_server(max_concurrent_calls=2, registrars=(*SERVICE_REGISTRARS, gate))
    channel = grpc.insecure_channel(server.address)
    blocked = [channel.unary_unary(f"/{GATE_SERVICE}/Pass").future(b"", timeout=10) for _ in range(2)]
    assert gate.waiting.acquire(timeout=5)
    assert gate.waiting.acquire(timeout=5)
    client = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    error = failure(lambda: client.Evaluate(request(), timeout=5))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "Concurrent RPC limit exceeded!"  # grpcio's words; the README says so
    gate.open.set()
    assert [call.result() for call in blocked] == [b"passed", b"passed"]

    # grpcio frees a call's slot once the call is done on its side, which may be just after its
    # answer reached the client: service resumes, but not necessarily at this very instant.
    def resumed() -> bool:
        try:
            return client.Evaluate(request(), timeout=5).evaluation.variant == "blue"
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            return False

    eventually(resumed, timeout=5)
    channel.close()


# ---------------------------------------------------------------- unix sockets


def test_tcp_and_unix_socket_together(start_server, tmp_path: Path) -> None:
    path = tmp_path / "flags.sock"
    server = start_server(("127.0.0.1:0", f"unix://{path}"))
    assert path.is_socket()
    assert path.stat().st_mode & 0o777 == 0o660
    for target in (server.address, f"unix://{path}", f"unix:{path}"):
        assert stub(target).Evaluate(request(), timeout=5).evaluation.variant == "blue"
    server.stop(0)
    assert not path.exists()


def test_unix_socket_only(start_server, tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/only.sock"
    server = start_server(address)
    assert server.port == 0
    assert server.address == address
    assert stub(address).Evaluate(request(), timeout=5).evaluation.variant == "blue"


def test_a_live_socket_is_not_stolen(start_server, store: FlagStore, tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/busy.sock"
    start_server(address)
    with pytest.raises(OSError, match="another process is accepting calls on it"):
        SidecarServer(store, address).start()
    assert stub(address).Evaluate(request(), timeout=5).evaluation.variant == "blue"


def test_a_stale_socket_file_is_replaced(start_server, tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound but never listening: what a crashed process leaves behind
    stale.close()
    start_server(f"unix://{path}")
    assert stub(f"unix://{path}").Evaluate(request(), timeout=5).evaluation.variant == "blue"


def test_a_regular_file_is_not_replaced(store: FlagStore, tmp_path: Path) -> None:
    path = tmp_path / "important.txt"
    path.write_text("keep me")
    with pytest.raises(OSError, match="exists and is not a socket"):
        SidecarServer(store, f"unix://{path}").start()
    assert path.read_text() == "keep me"


# ---------------------------------------------------------------- keys, echoes and answer sizes


def limit_rejections(metrics: SidecarMetrics, limit: str) -> float:
    value = metrics.registry.get_sample_value("flag_sidecar_limit_rejections_total", {"limit": limit})
    return 0.0 if value is None else value


def flagd_stubs(target: str) -> tuple[evaluation_v1_grpc.ServiceStub, evaluation_v2_grpc.ServiceStub]:
    channel = grpc.insecure_channel(target)
    return evaluation_v1_grpc.ServiceStub(channel), evaluation_v2_grpc.ServiceStub(channel)


def test_a_flag_key_over_the_limit_is_invalid_argument_on_every_api(start_server, store: FlagStore) -> None:
    metrics = SidecarMetrics(store, process_metrics=False)
    server = start_server(metrics=metrics)
    client = stub(server.address)
    v1, v2 = flagd_stubs(server.address)
    key = "k" * 100_000  # echoed whole, the status would overflow grpcio's 16 KB metadata limit
    calls = [
        lambda: client.Evaluate(request(flag_key=key), timeout=5),
        lambda: client.EvaluateAll(
            evaluation_pb2.EvaluateAllRequest(flag_keys=["banner-color", key]), timeout=5
        ),
        lambda: v1.ResolveBoolean(evaluation_v1.ResolveBooleanRequest(flag_key=key), timeout=5),
        lambda: v2.ResolveString(evaluation_v2.ResolveStringRequest(flag_key=key), timeout=5),
    ]
    for call in calls:
        error = failure(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "is 100000 bytes; the limit is 1024 (--max-flag-key-bytes)" in error.details()
        assert len(error.details()) < 300
    assert limit_rejections(metrics, "max_flag_key_bytes") == 4
    error = failure(lambda: client.Evaluate(request(flag_key="k" * 1024), timeout=5))
    assert error.code() == grpc.StatusCode.NOT_FOUND  # at the limit: just not found


def test_client_text_echoed_into_a_status_is_cut_short(start_server) -> None:
    server = start_server()
    client = stub(server.address)
    reserved = "$" + "k" * 50_000  # within --max-context-bytes; the error names the key
    calls = [
        lambda: client.Evaluate(request({reserved: 1}), timeout=5),
        lambda: client.EvaluateAll(
            evaluation_pb2.EvaluateAllRequest(user=request({reserved: 1}).user), timeout=5
        ),
    ]
    for call in calls:
        error = failure(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # not RESOURCE_EXHAUSTED on the metadata
        assert error.details().startswith("invalid user context: context key '$kkk")
        assert error.details().endswith("… (cut; 50096 characters in all)")
        assert len(error.details()) < 1100
    # flagd's protocol drops "$" keys (flagd does too): its echoes are flag keys, bounded above.


def test_bounded_keeps_short_text_and_cuts_long_text() -> None:
    assert bounded("short") == "short"
    assert bounded("x" * 10, 4) == "xxxx… (cut; 10 characters in all)"


def test_evaluate_all_bounds_its_key_list_and_collapses_duplicates(start_server, store: FlagStore) -> None:
    metrics = SidecarMetrics(store, process_metrics=False)
    events = RecordingEvents()
    server = start_server(metrics=metrics, events=events)
    client = stub(server.address)
    keys = [f"unknown-{number}" for number in range(1001)]
    error = failure(lambda: client.EvaluateAll(evaluation_pb2.EvaluateAllRequest(flag_keys=keys), timeout=5))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("EvaluateAll lists 1001 distinct flag keys; the limit is 1000")
    assert limit_rejections(metrics, "max_evaluate_all_keys") == 1
    assert events.seen == []
    answer = client.EvaluateAll(
        evaluation_pb2.EvaluateAllRequest(flag_keys=["banner-color"] * 5000), timeout=5
    )
    assert [evaluation.flag_key for evaluation in answer.evaluations] == ["banner-color"]


def test_evaluate_all_makes_no_event_for_an_unknown_key(start_server) -> None:
    events = RecordingEvents()
    server = start_server(events=events)
    client = stub(server.address)
    keys = ["banner-color", *(f"unknown-{number}" for number in range(500))]
    for debug in (False, True):  # the fast path and the general one
        events.seen.clear()
        answer = client.EvaluateAll(
            evaluation_pb2.EvaluateAllRequest(user=request().user, flag_keys=keys, debug=debug), timeout=5
        )
        assert len(answer.evaluations) == 501
        assert [evaluation.flag_key for evaluation, _user, _context in events.seen] == ["banner-color"]


def test_an_answer_over_the_limit_is_resource_exhausted(start_server, store: FlagStore) -> None:
    metrics = SidecarMetrics(store, process_metrics=False)
    events = RecordingEvents()
    server = start_server(
        metrics=metrics, events=events, context_limits=ContextLimits(max_response_bytes=100)
    )
    client = stub(server.address)
    v1, _v2 = flagd_stubs(server.address)
    calls = [
        lambda: client.EvaluateAll(evaluation_pb2.EvaluateAllRequest(user=request().user), timeout=5),
        lambda: client.EvaluateAll(
            evaluation_pb2.EvaluateAllRequest(user=request().user, debug=True), timeout=5
        ),
        lambda: v1.ResolveAll(evaluation_v1.ResolveAllRequest(), timeout=5),
    ]
    for call in calls:
        error = failure(call)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "; the limit is 100 (--max-response-bytes): ask for fewer flags" in error.details()
    assert limit_rejections(metrics, "max_response_bytes") == 3
    native_events = [evaluation for evaluation, _user, _context in events.seen]
    assert len(native_events) == 5  # ResolveAll's (it records before it answers); none from EvaluateAll
    answer = client.EvaluateAll(evaluation_pb2.EvaluateAllRequest(flag_keys=["upload-limit"]), timeout=5)
    assert answer.total == 1
