"""Events from a real gRPC server: Evaluate, EvaluateAll and the EventService.Track stream."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc, event_pb2, event_pb2_grpc
from sidecar.events import DataExporterScheduler, EventPipeline, RetryPolicy, Route
from sidecar.server.app import SidecarServer
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import SAMPLE_FLAGS, eventually, write_flag_file

from .helpers import RecordingExporter, StuckExporter

FAST = RetryPolicy(initial=0.01, maximum=0.05)


def user(user_id: str, **context: object) -> evaluation_pb2.User:
    struct = struct_pb2.Struct()
    struct.update(context)
    return evaluation_pb2.User(id=user_id, context=struct)


class Sidecar:
    def __init__(self, server: SidecarServer, channel: grpc.Channel, pipeline: EventPipeline) -> None:
        self.server = server
        self.channel = channel
        self.pipeline = pipeline
        self.evaluation = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        self.events = event_pb2_grpc.EventServiceStub(channel)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    running: list[tuple[Sidecar, FlagStore]] = []

    def start(
        *exporters: object,
        buffer_limit: int | None = None,
        buffer_bytes: int | None = None,
        **pipeline_options: object,
    ) -> Sidecar:
        schedulers = [
            DataExporterScheduler(
                0.01,
                100,
                e,
                logging.getLogger("test"),
                name=f"e{i}",
                retry=FAST,
                buffer_limit=buffer_limit,
                buffer_bytes=buffer_bytes,
            )
            for i, e in enumerate(exporters)
        ]
        pipeline = EventPipeline([Route(s) for s in schedulers], **pipeline_options)
        pipeline.start()
        store = FlagStore(FileSource(write_flag_file(tmp_path / "flags.yaml", SAMPLE_FLAGS)))
        store.start()
        server = SidecarServer(store, "127.0.0.1:0", events=pipeline)
        server.start()
        sidecar = Sidecar(server, grpc.insecure_channel(server.address), pipeline)
        running.append((sidecar, store))
        return sidecar

    yield start
    for sidecar, store in running:
        sidecar.channel.close()
        sidecar.server.stop(0)
        sidecar.pipeline.close(0.5)
        store.close()


def test_evaluate_produces_a_feature_event(start: Callable[..., Sidecar]) -> None:
    exporter = RecordingExporter()
    sidecar = start(exporter)
    sidecar.evaluation.Evaluate(
        evaluation_pb2.EvaluateRequest(flag_key="new-checkout", user=user("ada", email="ada@example.com"))
    )
    with pytest.raises(grpc.RpcError) as info:
        sidecar.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="nope", user=user("bob")))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    eventually(lambda: len(exporter.events) == 2)
    found, missing = (e.to_json() for e in exporter.events)
    assert found["key"] == "new-checkout"
    assert found["userKey"] == "ada"
    assert found["variation"] == "on"
    assert found["value"] is True
    assert found["default"] is False
    assert found["version"] != ""
    assert missing["variation"] == "SdkDefault"
    assert missing["default"] is True


@pytest.mark.parametrize("enabled", [True, False])
def test_evaluate_all_produces_events_unless_turned_off(start: Callable[..., Sidecar], enabled: bool) -> None:
    exporter = RecordingExporter()
    sidecar = start(exporter, events_on_evaluate_all=enabled)
    response = sidecar.evaluation.EvaluateAll(evaluation_pb2.EvaluateAllRequest(user=user("ada")))
    sidecar.evaluation.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=user("ada")))
    expected = response.total + 1 if enabled else 1
    eventually(lambda: len(exporter.events) == expected)
    assert sidecar.pipeline.wait_idle(2)
    assert len(exporter.events) == expected


def track_requests(*names: str) -> Iterator[event_pb2.TrackRequest]:
    for name in names:
        details = struct_pb2.Struct()
        details.update({"value": 42.5})
        yield event_pb2.TrackRequest(name=name, user=user("ada", plan="pro"), details=details)


def test_track_streams_tracking_events_through_the_pipeline(start: Callable[..., Sidecar]) -> None:
    exporter = RecordingExporter()
    sidecar = start(exporter)
    response = sidecar.events.Track(track_requests("signup", "checkout", "checkout"))
    assert response.accepted == 3
    eventually(lambda: len(exporter.events) == 3)
    first = exporter.events[0].to_json()
    assert first["kind"] == "tracking"
    assert first["key"] == "signup"
    assert first["userKey"] == "ada"
    assert first["evaluationContext"] == {"targetingKey": "ada", "plan": "pro"}
    assert first["trackingEventDetails"] == {"value": 42.5}


def test_track_rejects_an_event_without_a_name(start: Callable[..., Sidecar]) -> None:
    sidecar = start(RecordingExporter())
    with pytest.raises(grpc.RpcError) as info:
        sidecar.events.Track(track_requests("ok", ""))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("accepted-count", "1") in info.value.trailing_metadata()


def test_track_answers_resource_exhausted_instead_of_dropping(start: Callable[..., Sidecar]) -> None:
    stuck = StuckExporter()  # no spool, a 20-event buffer: full after a few batches
    sidecar = start(stuck, buffer_limit=20)
    accepted = 0
    error: grpc.RpcError | None = None
    for _ in range(200):
        try:
            accepted += sidecar.events.Track(track_requests(*["e"] * 10)).accepted
        except grpc.RpcError as exc:
            error = exc
            break
    assert error is not None
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    accepted += int(dict(error.trailing_metadata())["accepted-count"])
    stats = sidecar.pipeline.stats()["e0"]
    assert stats["dropped"] == 0  # refused, not dropped
    assert stats["enqueued"] == accepted
    stuck.release.set()


def test_a_stuck_exporter_does_not_slow_evaluations_or_other_exporters(start: Callable[..., Sidecar]) -> None:
    stuck, healthy = StuckExporter(), RecordingExporter()
    sidecar = start(stuck, healthy)
    request = evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=user("ada"))
    sidecar.evaluation.Evaluate(request)
    assert stuck.entered.wait(5)
    for _ in range(500):
        sidecar.evaluation.Evaluate(request, timeout=5)
    eventually(lambda: len(healthy.events) == 501)
    assert stuck.batches == []
    stuck.release.set()


def track_one(sidecar: Sidecar, request: event_pb2.TrackRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        sidecar.events.Track(iter([request]))
    return info.value


@pytest.mark.parametrize(
    "context",
    [
        {"$userId": "mallory"},
        {"plan": float("nan")},
        {"plan": float("inf")},
        {"plan": {"tier": "pro"}},
        {"plan": ["pro"]},
        {"": "empty key"},
    ],
    ids=["reserved", "nan", "infinity", "object", "list", "empty-key"],
)
def test_track_admits_a_context_as_evaluate_does(start: Callable[..., Sidecar], context: dict) -> None:
    exporter = RecordingExporter()
    sidecar = start(exporter)
    with pytest.raises(grpc.RpcError) as evaluated:
        sidecar.evaluation.Evaluate(
            evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=user("ada", **context))
        )
    tracked = track_one(sidecar, event_pb2.TrackRequest(name="checkout", user=user("ada", **context)))
    assert evaluated.value.code() == tracked.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert tracked.details().startswith(evaluated.value.details())  # the same words, plus the count
    assert sidecar.pipeline.rejections() == {"invalid_context": 1}
    assert sidecar.pipeline.wait_idle(2)
    assert [e.kind for e in exporter.events] == []  # Evaluate's refusal records no event either


def test_track_cannot_spoof_the_exported_targeting_key(start: Callable[..., Sidecar]) -> None:
    exporter = RecordingExporter()
    sidecar = start(exporter)
    error = track_one(
        sidecar, event_pb2.TrackRequest(name="checkout", user=user("ada", targetingKey="mallory"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'targetingKey' is reserved" in error.details()
    assert sidecar.pipeline.wait_idle(2)
    assert exporter.events == []


@pytest.mark.parametrize(
    ("details", "where"),
    [({"value": float("nan")}, "details.value"), ({"a": {"b": [1, float("-inf")]}}, "details.a.b[1]")],
)
def test_track_refuses_nan_and_infinity_in_details(
    start: Callable[..., Sidecar], details: dict, where: str
) -> None:
    exporter = RecordingExporter()
    sidecar = start(exporter)
    struct = struct_pb2.Struct()
    struct.update(details)
    error = track_one(sidecar, event_pb2.TrackRequest(name="checkout", user=user("ada"), details=struct))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert where in error.details()
    assert "not a finite number" in error.details()
    assert sidecar.pipeline.rejections() == {"invalid_details": 1}


def test_track_details_are_bounded_in_size(start: Callable[..., Sidecar]) -> None:
    exporter = RecordingExporter()
    sidecar = start(exporter, max_details_bytes=1024)
    small, large = struct_pb2.Struct(), struct_pb2.Struct()
    small.update({"note": "x" * 900})
    large.update({"note": "x" * 2000})
    assert sidecar.events.Track(
        iter([event_pb2.TrackRequest(name="ok", user=user("ada"), details=small)])
    ).accepted
    error = track_one(sidecar, event_pb2.TrackRequest(name="big", user=user("ada"), details=large))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the limit is 1024 bytes (--max-event-details-bytes)" in error.details()
    assert sidecar.pipeline.rejections() == {"details_too_large": 1}
    eventually(lambda: len(exporter.events) == 1)


def test_track_memory_is_bounded_in_bytes_not_events(start: Callable[..., Sidecar]) -> None:
    """A stuck exporter and no spool: big events fill the buffer's bytes long before its count."""
    stuck = StuckExporter()
    budget = 2 * 1024 * 1024
    sidecar = start(stuck, buffer_bytes=budget)
    details = struct_pb2.Struct()
    details.update({"blob": "x" * 50_000})
    request = event_pb2.TrackRequest(name="big", user=user("ada"), details=details)
    accepted = 0
    error: grpc.RpcError | None = None
    for _ in range(100):
        try:
            accepted += sidecar.events.Track(iter([request] * 10)).accepted
        except grpc.RpcError as exc:
            error = exc
            break
    assert error is not None
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    accepted += int(dict(error.trailing_metadata())["accepted-count"])
    # About 40 events of 50 KB fit in 2 MiB; the count limit alone (10 000) would have taken them all.
    assert 10 <= accepted <= 2 * budget // 50_000
    stats = sidecar.pipeline.stats()["e0"]
    assert stats["in_memory_bytes"] <= budget + 2 * 50_000  # the buffer, and the batch being exported
    assert sidecar.pipeline.rejections() == {"backpressure": 1}
    stuck.release.set()


def test_a_fault_in_track_is_internal_as_on_every_service(
    start: Callable[..., Sidecar], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # grpcio would answer UNKNOWN (which clients retry) with the exception's text in the details.
    sidecar = start(RecordingExporter())

    def broken(*_args: object) -> bool:
        raise RuntimeError("boom: never shown to the client")

    monkeypatch.setattr(sidecar.pipeline, "track", broken)
    error = track_one(sidecar, event_pb2.TrackRequest(name="checkout", user=user("ada")))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INTERNAL,
        "internal error in the sidecar (see its log)",
    )
    assert "Track failed on an unexpected error" in caplog.messages
    # The service's own refusals and an undecodable message keep their statuses (not INTERNAL).
    monkeypatch.undo()
    error = track_one(sidecar, event_pb2.TrackRequest(name="", user=user("ada")))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "name is required (0 events of this stream were accepted)",
    )
