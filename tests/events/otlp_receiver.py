"""A real OTLP/gRPC receiver for the otlp exporter's tests: opentelemetry-proto's LogsService on
127.0.0.1:<port>, recording every request with its metadata, answering as told."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

# What the receiver answers to request n (0-based): None accepts the request; (code, message,
# retry delay or None) fails it; an int accepts it as a partial success rejecting that many records.
Answer = tuple[grpc.StatusCode, str, float | None] | int | None


def plain(value: AnyValue) -> Any:
    """An AnyValue as the JSON value it stands for (the empty AnyValue is null)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    return getattr(value, kind)


def attributes(record: Any) -> dict[str, Any]:
    return {kv.key: plain(kv.value) for kv in record.attributes}


@dataclass
class Received:
    request: logs_service_pb2.ExportLogsServiceRequest
    metadata: dict[str, str]
    accepted: bool

    @property
    def records(self) -> list[LogRecord]:
        return [r for rl in self.request.resource_logs for sl in rl.scope_logs for r in sl.log_records]


@dataclass
class OtlpReceiver:
    port: int = 0
    answer: Callable[[int], Answer] = lambda _n: None
    credentials: grpc.ServerCredentials | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        receiver = self

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
                metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
                with receiver.lock:
                    answer = receiver.answer(len(receiver.received))
                    failed = isinstance(answer, tuple)
                    receiver.received.append(Received(request, metadata, not failed))
                if isinstance(answer, tuple):
                    code, message, delay = answer
                    if delay is None:
                        context.abort(code, message)
                    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=int(delay)))
                    status = status_pb2.Status(code=code.value[0], message=message)
                    status.details.add().Pack(retry)
                    context.abort_with_status(_Status(code, message, status))
                response = logs_service_pb2.ExportLogsServiceResponse()
                if answer:
                    response.partial_success.rejected_log_records = answer
                    response.partial_success.error_message = "too old"
                return response

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), self.server)
        address = f"127.0.0.1:{self.port}"
        if self.credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, self.credentials)
        self.server.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.accepted]

    def records(self) -> list[LogRecord]:
        return [record for r in self.accepted() for record in r.records]

    def event_ids(self) -> list[str]:
        return [attributes(r)["flag_sidecar.event.id"] for r in self.records()]

    def close(self) -> None:
        self.server.stop(grace=0).wait(5)


class _Status(grpc.Status):  # type: ignore[misc]
    """A status with google.rpc.Status details, as grpcio-status's rpc_status.to_status makes."""

    def __init__(self, code: grpc.StatusCode, details: str, status: status_pb2.Status) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = (("grpc-status-details-bin", status.SerializeToString()),)
