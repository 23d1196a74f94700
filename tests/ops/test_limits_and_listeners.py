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
from sidecar.server.limits import ContextLimits
from sidecar.store import FlagStore

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
    assert client.Evaluate(request(), timeout=5).evaluation.variant == "blue"
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
