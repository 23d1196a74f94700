"""Request bytes that are not the method's message, over the wire, on every service registered through
sidecar.server.decoding (flagd v1 and v2, EventService, health, reflection): INVALID_ARGUMENT naming
the message expected, one warning, the RPC metrics where the method has them, and a server that goes
on serving.
(The native EvaluationService parses its own bytes: tests/server/test_evaluation_paths.py.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from flagd.evaluation.v1 import evaluation_pb2 as flagd_v1
from flagd.evaluation.v2 import evaluation_pb2 as flagd_v2
from flagsidecar.v1 import event_pb2
from sidecar.server import decoding
from sidecar.server.app import SidecarServer
from sidecar.server.metrics import SidecarMetrics
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import SAMPLE_FLAGS, write_flag_file

GARBAGE = b"\xff\xff\xff"  # a truncated varint: no message type parses it (checked below)
_LABELS = {flagd_v1: "flagd.v1", flagd_v2: "flagd.v2"}


def _methods(module: ModuleType) -> list[tuple[ModuleType, Any]]:
    return [
        (module, method)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


METHODS = [*_methods(flagd_v1), *_methods(flagd_v2), *_methods(event_pb2)]
FLAGD_UNARY = [(m, d) for m, d in METHODS if m is not event_pb2 and not d.server_streaming]
FLAGD_STREAMS = [(m, d) for m, d in METHODS if m is not event_pb2 and d.server_streaming]
TRACK = event_pb2.DESCRIPTOR.services_by_name["EventService"].methods_by_name["Track"]


def _path(method: Any) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _expected(method: Any) -> str:
    return (
        f"the request is not a valid {method.input_type.full_name} message "
        "(is the client built from this server's .proto?)"
    )


class Running:
    def __init__(self, server: SidecarServer, metrics: SidecarMetrics, channel: grpc.Channel) -> None:
        self.server = server
        self.metrics = metrics
        self.channel = channel

    def rpc_counts(self) -> dict[tuple[str, str], int]:
        return {key: int(sum(entry[:-1])) for key, entry in self.metrics.rpc_histograms().items()}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """The whole sidecar (app.py's registrars) with RPC metrics, on a free port."""
    store = FlagStore(FileSource(write_flag_file(tmp_path / "flags.yaml", SAMPLE_FLAGS)))
    store.start()
    metrics = SidecarMetrics(store, process_metrics=False)
    server = SidecarServer(store, "127.0.0.1:0", metrics=metrics)
    server.start()
    channel = grpc.insecure_channel(server.address)
    yield Running(server, metrics, channel)
    channel.close()
    server.stop(grace=0)
    store.close()


def _warnings(caplog: pytest.LogCaptureFixture, path: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith(f"{path}: undecodable request (")
    ]


@pytest.mark.parametrize(("module", "method"), METHODS, ids=lambda m: getattr(m, "full_name", None))
def test_the_garbage_is_no_request_message(module, method):
    with pytest.raises(DecodeError):
        getattr(module, method.input_type.name).FromString(GARBAGE)


@pytest.mark.parametrize(("module", "method"), FLAGD_UNARY, ids=lambda m: getattr(m, "full_name", None))
def test_a_flagd_request_that_does_not_parse_is_invalid_argument(running, caplog, module, method):
    path = _path(method)
    with pytest.raises(grpc.RpcError) as caught:
        running.channel.unary_unary(path)(GARBAGE, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == _expected(method)
    assert len(_warnings(caplog, path)) == 1
    label = f"{_LABELS[module]}/{method.name}"
    assert running.rpc_counts() == {(label, "INVALID_ARGUMENT"): 1}

    # The same method still answers a valid request: it reaches the servicer, which reads the key.
    request_class = getattr(module, method.input_type.name)
    response_class = getattr(module, method.output_type.name)
    call = running.channel.unary_unary(
        path,
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    if method.name == "ResolveAll":
        assert "new-checkout" in call(request_class(), timeout=5).flags
        assert running.rpc_counts()[(label, "OK")] == 1
    else:
        with pytest.raises(grpc.RpcError) as caught:
            call(request_class(flag_key="no-such-flag"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no-such-flag" in caught.value.details()
        assert running.rpc_counts()[(label, "NOT_FOUND")] == 1


def test_a_valid_flagd_request_is_answered_through_the_changed_handlers(running):
    for module in (flagd_v1, flagd_v2):
        call = running.channel.unary_unary(
            f"/{module.DESCRIPTOR.package}.Service/ResolveBoolean",
            request_serializer=module.ResolveBooleanRequest.SerializeToString,
            response_deserializer=module.ResolveBooleanResponse.FromString,
        )
        request = module.ResolveBooleanRequest(flag_key="new-checkout")
        request.context.update({"targetingKey": "ada", "email": "ada@example.com"})
        response = call(request, timeout=5)
        assert (response.value, response.variant, response.reason) == (True, "on", "TARGETING_MATCH")


@pytest.mark.parametrize(("module", "method"), FLAGD_STREAMS, ids=lambda m: getattr(m, "full_name", None))
def test_an_event_stream_request_that_does_not_parse_is_invalid_argument(running, caplog, module, method):
    path = _path(method)
    with pytest.raises(grpc.RpcError) as caught:
        list(running.channel.unary_stream(path)(GARBAGE, timeout=5))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == _expected(method)
    assert len(_warnings(caplog, path)) == 1
    assert running.rpc_counts() == {}  # EventStream is not timed, whatever its outcome

    # A valid EventStream opens as usual: provider_ready first.
    stream = running.channel.unary_stream(path, response_deserializer=module.EventStreamResponse.FromString)(
        module.EventStreamRequest().SerializeToString(), timeout=10
    )
    assert next(stream).type == "provider_ready"
    stream.cancel()


def _track_bytes(*names: str) -> list[bytes]:
    return [event_pb2.TrackRequest(name=name).SerializeToString() for name in names]


def test_a_track_message_that_does_not_parse_ends_the_stream_with_the_count_accepted(running, caplog):
    path = _path(TRACK)
    track = running.channel.stream_unary(path)
    with pytest.raises(grpc.RpcError) as caught:
        track(iter([*_track_bytes("signup", "checkout"), GARBAGE, *_track_bytes("never-read")]), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == f"{_expected(TRACK)} (2 events of this stream were accepted)"
    assert ("accepted-count", "2") in caught.value.trailing_metadata()
    assert len(_warnings(caplog, path)) == 1

    with pytest.raises(grpc.RpcError) as caught:  # the first message
        track(iter([GARBAGE]), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("accepted-count", "0") in caught.value.trailing_metadata()

    # The service goes on: a valid stream is accepted whole.
    response = event_pb2.TrackResponse.FromString(track(iter(_track_bytes("a", "b", "c")), timeout=5))
    assert response.accepted == 3


def test_the_server_goes_on_after_many_bad_requests(running):
    for _ in range(20):
        for _module, method in FLAGD_UNARY:
            with pytest.raises(grpc.RpcError) as caught:
                running.channel.unary_unary(_path(method))(GARBAGE, timeout=5)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    call = running.channel.unary_unary(
        "/flagd.evaluation.v2.Service/ResolveString",
        request_serializer=flagd_v2.ResolveStringRequest.SerializeToString,
        response_deserializer=flagd_v2.ResolveStringResponse.FromString,
    )
    assert call(flagd_v2.ResolveStringRequest(flag_key="banner-color"), timeout=5).value == "#1f77b4"


HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def test_health_and_reflection_requests_that_do_not_parse_are_invalid_argument(running, caplog):
    calls = {
        HEALTH_CHECK: lambda: running.channel.unary_unary(HEALTH_CHECK)(GARBAGE, timeout=5),
        HEALTH_WATCH: lambda: list(running.channel.unary_stream(HEALTH_WATCH)(GARBAGE, timeout=5)),
        REFLECTION: lambda: list(running.channel.stream_stream(REFLECTION)(iter([GARBAGE]), timeout=5)),
    }
    expected = {
        HEALTH_CHECK: "grpc.health.v1.HealthCheckRequest",
        HEALTH_WATCH: "grpc.health.v1.HealthCheckRequest",
        REFLECTION: "grpc.reflection.v1alpha.ServerReflectionRequest",
    }
    for path, call in calls.items():
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, path
        assert caught.value.details() == decoding.undecodable_message(expected[path])
        assert len(_warnings(caplog, path)) == 1
    assert not [r for r in caplog.records if r.exc_info]  # no traceback in the log
    # Both services go on answering, and the bad reflection calls hold no stream.
    assert running.server.streams.open_streams == 0
    check = running.channel.unary_unary(
        HEALTH_CHECK,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    assert (
        check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    reflection = reflection_pb2_grpc.ServerReflectionStub(running.channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    assert "grpc.health.v1.Health" in [
        service.name for service in next(reflection).list_services_response.service
    ]


# ---------------------------------------------------------------- registration


class FakeServer:
    def __init__(self) -> None:
        self.generic: list[Any] = []
        self.registered: dict[str, dict[str, grpc.RpcMethodHandler]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self.registered[service] = handlers


def _behaviour(request: Any, context: Any) -> Any:
    return request


def test_handlers_it_cannot_change_are_registered_as_they_are():
    as_they_are = {
        "Bytes": grpc.unary_unary_rpc_method_handler(_behaviour),  # the servicer parses bytes itself
        "NotGenerated": grpc.unary_unary_rpc_method_handler(_behaviour, request_deserializer=bytes.decode),
    }
    changed = grpc.unary_unary_rpc_method_handler(
        _behaviour, request_deserializer=event_pb2.TrackRequest.FromString
    )

    def add(_servicer: object, server: Any) -> None:
        handlers = {**as_they_are, "Generated": changed}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Service", handlers),))
        server.add_registered_method_handlers("test.Service", handlers)

    server = FakeServer()
    decoding.add_servicer(add, object(), server)  # type: ignore[arg-type]
    registered = server.registered["test.Service"]
    assert registered["Bytes"] is as_they_are["Bytes"]
    assert registered["NotGenerated"] is as_they_are["NotGenerated"]
    assert registered["Generated"].request_deserializer is None
    assert (
        registered["Generated"].unary_unary(event_pb2.TrackRequest(name="x").SerializeToString(), None).name
        == "x"
    )
    assert len(server.generic) == 1


def test_generated_code_that_registers_generic_handlers_only_is_refused():
    def add(_servicer: object, server: Any) -> None:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Service", {}),))

    with pytest.raises(TypeError, match="regenerate"):
        decoding.add_servicer(add, object(), FakeServer())  # type: ignore[arg-type]
