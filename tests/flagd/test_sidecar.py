"""The flagd services inside the real SidecarServer: registration, events, limits, shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flagd.evaluation.v1 import evaluation_pb2 as v1
from flagd.evaluation.v1 import evaluation_pb2_grpc as v1_grpc
from flagd.evaluation.v2 import evaluation_pb2 as v2
from flagd.evaluation.v2 import evaluation_pb2_grpc as v2_grpc
from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.events import DataExporterScheduler, EventPipeline, RetryPolicy, Route
from sidecar.server.app import SidecarServer
from sidecar.server.flagd import FlagdSettings
from sidecar.server.limits import ContextLimits
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import eventually, write_flag_file
from tests.events.helpers import RecordingExporter

from . import flags as test_flags
from .test_event_stream import StreamReader

TIMEOUT = 5


def struct(**values) -> Struct:
    result = Struct()
    result.update(values)
    return result


class Sidecar:
    def __init__(self, server: SidecarServer, exporter: RecordingExporter) -> None:
        self.server = server
        self.exporter = exporter
        self.channel = grpc.insecure_channel(server.address)
        self.native = evaluation_pb2_grpc.EvaluationServiceStub(self.channel)
        self.v1 = v1_grpc.ServiceStub(self.channel)
        self.v2 = v2_grpc.ServiceStub(self.channel)

    def events_json(self, count: int) -> list[dict]:
        eventually(lambda: len(self.exporter.events) >= count)
        events = [event.to_json() for event in self.exporter.events[:count]]
        for event in events:  # unique per event by design
            del event["eventId"], event["creationDate"]
        return events


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    running: list[tuple[Sidecar, EventPipeline, FlagStore]] = []

    def start(**server_options) -> Sidecar:
        exporter = RecordingExporter(is_bulk=False)
        scheduler = DataExporterScheduler(
            0.01, 100, exporter, logging.getLogger("test"), retry=RetryPolicy(initial=0.01, maximum=0.05)
        )
        pipeline = EventPipeline([Route(scheduler)])
        pipeline.start()
        store = FlagStore(FileSource(write_flag_file(tmp_path / "flags.yaml", test_flags.flags())))
        store.start()
        server_options.setdefault("flagd", FlagdSettings.from_options(["injected=set"], ["x-tenant=tenant"]))
        server = SidecarServer(store, "127.0.0.1:0", events=pipeline, **server_options)
        server.start()
        sidecar = Sidecar(server, exporter)
        running.append((sidecar, pipeline, store))
        return sidecar

    yield start
    for sidecar, pipeline, store in running:
        sidecar.channel.close()
        sidecar.server.stop(0)
        pipeline.close(0.5)
        store.close()


def test_both_versions_are_served_on_the_native_port_with_health(start_sidecar):
    sidecar = start_sidecar()
    assert {"flagd.evaluation.v1.Service", "flagd.evaluation.v2.Service"} <= set(sidecar.server.service_names)
    health = health_pb2_grpc.HealthStub(sidecar.channel)
    for service in ("flagd.evaluation.v1.Service", "flagd.evaluation.v2.Service"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    request = v2.ResolveBooleanRequest(flag_key="bool-flag")
    assert sidecar.v2.ResolveBoolean(request, timeout=TIMEOUT).value is True
    native = sidecar.native.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="bool-flag"), timeout=TIMEOUT)
    assert native.evaluation.variant == "on"


def test_flagd_evaluations_make_the_same_feature_events_as_native_ones(start_sidecar):
    sidecar = start_sidecar()
    cases = [
        ("targeted-flag", "ResolveString", {"email": "ann@example.com"}),
        ("split-flag", "ResolveString", {}),
    ]
    cases += [("disabled-flag", "ResolveBoolean", {}), ("int-flag", "ResolveInt", {})]
    for flag_key, method, context in cases:
        user = evaluation_pb2.User(id="ann", context=struct(**context))
        sidecar.native.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=flag_key, user=user), timeout=TIMEOUT)
        flagd_context = struct(targetingKey="ann", **context)
        request = getattr(v2, f"{method}Request")(flag_key=flag_key, context=flagd_context)
        getattr(sidecar.v2, method)(request, timeout=TIMEOUT)
        request = getattr(v1, f"{method}Request")(flag_key=flag_key, context=flagd_context)
        getattr(sidecar.v1, method)(request, timeout=TIMEOUT)
    events = sidecar.events_json(3 * len(cases))
    for index, (flag_key, _, _) in enumerate(cases):
        native, through_v2, through_v1 = events[3 * index : 3 * index + 3]
        assert native["key"] == flag_key
        assert native["userKey"] == "ann"
        assert through_v2 == native
        assert through_v1 == native
    # The disabled flag's event says what the native API answers (its defaultVariantWhenOff).
    assert events[6]["variation"] == "off"


def test_resolve_all_makes_the_same_events_as_evaluate_all(start_sidecar):
    sidecar = start_sidecar(flagd=FlagdSettings())  # no static context: the same context both ways
    user = evaluation_pb2.User(id="bo")
    sidecar.native.EvaluateAll(evaluation_pb2.EvaluateAllRequest(user=user), timeout=TIMEOUT)
    count = len(test_flags.FLAGS["flags"])
    native = sidecar.events_json(count)
    sidecar.v1.ResolveAll(v1.ResolveAllRequest(context=struct(targetingKey="bo")), timeout=TIMEOUT)
    assert sidecar.events_json(2 * count)[count:] == native


def test_errors_become_sdk_default_events(start_sidecar):
    sidecar = start_sidecar()
    for flag_key in ("no-such-flag", "string-flag"):  # not found; wrong type for ResolveBoolean
        with pytest.raises(grpc.RpcError):
            sidecar.v2.ResolveBoolean(v2.ResolveBooleanRequest(flag_key=flag_key), timeout=TIMEOUT)
    not_found, mismatch = sidecar.events_json(2)
    assert (not_found["key"], not_found["variation"], not_found["default"]) == (
        "no-such-flag",
        "SdkDefault",
        True,
    )
    assert (mismatch["key"], mismatch["variation"], mismatch["default"]) == (
        "string-flag",
        "SdkDefault",
        True,
    )


def test_context_limits_apply_to_flagd_requests(start_sidecar):
    sidecar = start_sidecar(context_limits=ContextLimits(max_keys=2))
    request = v2.ResolveBooleanRequest(flag_key="bool-flag", context=struct(a=1, b=2, c=3))
    with pytest.raises(grpc.RpcError) as raised:
        sidecar.v2.ResolveBoolean(request, timeout=TIMEOUT)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "--max-context-keys" in raised.value.details()


def test_stop_sends_provider_shutdown_and_does_not_wait_out_the_grace(start_sidecar):
    sidecar = start_sidecar()
    readers = [StreamReader(sidecar.channel, 1), StreamReader(sidecar.channel, 2)]
    assert [reader.next()[0] for reader in readers] == ["provider_ready", "provider_ready"]
    started = time.monotonic()
    stopping = threading.Thread(target=sidecar.server.stop, args=(10,))
    stopping.start()
    for reader in readers:
        assert reader.next() == ("provider_shutdown", {})
        assert reader.next()[0] == "end"
    stopping.join(timeout=5)
    assert not stopping.is_alive()
    assert time.monotonic() - started < 3


def test_the_worker_pool_has_room_for_every_event_stream(start_sidecar):
    sidecar = start_sidecar(max_workers=2, flagd=FlagdSettings(max_event_streams=3))
    readers = [StreamReader(sidecar.channel) for _ in range(3)]
    assert [reader.next()[0] for reader in readers] == ["provider_ready"] * 3
    # Three streams hold three workers; unary calls still get the two others.
    for _ in range(5):
        request = v2.ResolveBooleanRequest(flag_key="bool-flag")
        assert sidecar.v2.ResolveBoolean(request, timeout=2).value is True
    for reader in readers:
        reader.cancel()
