"""The otlp exporter against a real OTLP/gRPC receiver: OpenTelemetry's feature_flag.evaluation
events (names and values of the attributes), batching, retry and spooling, TLS and headers."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.engine.model import ErrorCode, Evaluation, Reason
from sidecar.events import (
    FeatureEvent,
    PermanentExportError,
    PipelineConfig,
    RetryableExportError,
    RetryPolicy,
    SpecError,
    TrackingEvent,
    build_pipeline,
    parse_exporter_spec,
)
from sidecar.events.exporters.otlp import OtlpExporter, parse_endpoint
from sidecar.events.options import Options
from tests.conftest import eventually
from tests.ops.certs import Certificates, make_certificates
from tests.ports import free_port

from .otlp_receiver import OtlpReceiver, attributes, plain

FAST_RETRY = RetryPolicy(initial=0.02, maximum=0.1)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    yield r
    r.close()


def exporter(spec: str) -> OtlpExporter:
    options = Options(parse_exporter_spec(spec))
    built = OtlpExporter.from_options(options)
    options.finish()
    return built


def pipeline(spec: str, tmp_path: Path | None = None, **config: Any):
    return build_pipeline(
        PipelineConfig(exporters=[spec], spool_dir=tmp_path, retry=FAST_RETRY, fsync=False, **config)
    )


def event(reason: Reason, variant: str = "on", value: Any = True, **kw: Any) -> FeatureEvent:
    evaluation = Evaluation("new-checkout", value, variant, reason, 7, **kw)
    return FeatureEvent.from_evaluation(evaluation, "user-42")


def test_each_reason_is_a_feature_flag_evaluation_event_with_the_conventions_attributes(receiver):
    sink = exporter(f"otlp:endpoint={receiver.endpoint},set_id=checkout,service_name=shop-sidecar")
    reasons = [Reason.STATIC, Reason.DEFAULT, Reason.TARGETING_MATCH, Reason.SPLIT, Reason.DISABLED]
    events = [event(r) for r in reasons]
    sink.export(events)
    sink.close()

    (received,) = receiver.accepted()
    records = received.records
    assert [r.event_name for r in records] == ["feature_flag.evaluation"] * 5
    for record, reason, sent in zip(records, reasons, events, strict=True):
        assert attributes(record) == {
            "feature_flag.key": "new-checkout",
            "feature_flag.result.variant": "on",
            "feature_flag.result.value": True,
            "feature_flag.result.reason": reason.name.lower(),
            "feature_flag.context.id": "user-42",
            "feature_flag.provider.name": "flag-sidecar",
            "feature_flag.set.id": "checkout",
            "feature_flag.version": "7",
            "flag_sidecar.event.id": sent.event_id,
        }
        assert record.time_unix_nano == int(sent.creation_date * 1e9)
    assert {a["feature_flag.result.reason"] for a in map(attributes, records)} == {
        "static",
        "default",
        "targeting_match",
        "split",
        "disabled",
    }
    resource = {kv.key: plain(kv.value) for kv in received.request.resource_logs[0].resource.attributes}
    assert resource["service.name"] == "shop-sidecar"
    assert resource["host.name"]
    assert received.request.resource_logs[0].scope_logs[0].scope.name == "flag-sidecar"


@pytest.mark.parametrize("code", list(ErrorCode))
def test_errors_carry_error_type_and_no_variant_or_value(receiver, code: ErrorCode):
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    sink.export([event(Reason.ERROR, "", None, error_code=code, error_message="it went wrong")])
    sink.close()

    (record,) = receiver.records()
    assert attributes(record) == {
        "feature_flag.key": "new-checkout",
        "feature_flag.result.reason": "error",
        "error.type": code.name.lower(),  # flag_not_found, type_mismatch, ...
        "feature_flag.error.message": "it went wrong",
        "feature_flag.context.id": "user-42",
        "feature_flag.provider.name": "flag-sidecar",
        "feature_flag.set.id": "default",
        "feature_flag.version": "7",
        "flag_sidecar.event.id": attributes(record)["flag_sidecar.event.id"],
    }


def test_an_answer_without_a_default_has_a_reason_but_no_variant(receiver):
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    sink.export([event(Reason.DISABLED, "", None)])
    sink.close()

    found = attributes(receiver.records()[0])
    assert found["feature_flag.result.reason"] == "disabled"
    assert "feature_flag.result.variant" not in found
    assert "feature_flag.result.value" not in found
    assert "error.type" not in found


@pytest.mark.parametrize(
    "value",
    ["red", 3, 2.5, False, None, {"a": [1, "x", {"b": None}], "e": {}}, [], 2**70],
)
def test_values_keep_their_json_type(receiver, value):
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    sink.export([event(Reason.STATIC, "v", value)])
    sink.close()

    found = attributes(receiver.records()[0])["feature_flag.result.value"]
    assert found == (float(value) if value == 2**70 else value)
    assert type(found) is type(float(value) if value == 2**70 else value)


def test_each_event_carries_its_own_value_where_the_flag_and_answer_repeat(receiver):
    # The exporter reuses a record's repeated parts per flag and answer: a value changed under the
    # same key, variant and version (an object edited, or True and 1, equal in Python) is still its own.
    values = [{"a": 1}, {"a": 2}, True, 1, 1.0, "1", -0.0, 0.0, {"a": 2}]
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    sink.export([event(Reason.STATIC, "v", value) for value in values])
    sink.close()

    found = [attributes(r)["feature_flag.result.value"] for r in receiver.records()]
    assert found == values
    assert [type(v) for v in found] == [type(v) for v in values]
    assert str(found[6]) == "-0.0"


def test_user_keys_of_any_length_and_script_reach_the_collector(receiver):
    users = ["", "u", "ü" * 50, "用户" * 200, "x" * 70_000]
    evaluation = Evaluation("new-checkout", True, "on", Reason.STATIC, 7)
    events = [FeatureEvent.from_evaluation(evaluation, user) for user in users]
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    sink.export(events)
    sink.close()

    records = receiver.records()
    assert [attributes(r)["feature_flag.context.id"] for r in records] == users
    assert receiver.event_ids() == [e.event_id for e in events]
    assert [r.time_unix_nano for r in records] == [int(e.creation_date * 1e9) for e in events]
    assert [r.observed_time_unix_nano for r in records] == [r.time_unix_nano for r in records]


def test_a_value_nested_too_deep_for_a_decoder_is_cut_not_refused(receiver):
    deep: Any = "bottom"
    for _ in range(200):
        deep = [deep]
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    sink.export([event(Reason.STATIC, "v", deep)])
    sink.close()

    found = attributes(receiver.records()[0])["feature_flag.result.value"]
    depth = 0
    while isinstance(found, list):
        found, depth = found[0], depth + 1
    assert found == "(nested too deep for OTLP)"
    assert 10 < depth < 200


def test_values_false_leaves_values_out_and_keeps_variants(receiver):
    sink = exporter(f"otlp:endpoint={receiver.endpoint},values=false,set_id=")
    sink.export([event(Reason.STATIC, "on", {"secret": "s"})])
    sink.close()

    found = attributes(receiver.records()[0])
    assert found["feature_flag.result.variant"] == "on"
    assert "feature_flag.result.value" not in found
    assert "feature_flag.set.id" not in found


def test_tracking_events_are_flag_sidecar_track_events(receiver):
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    track = TrackingEvent("checkout", "ada", {"plan": "pro"}, {"value": 12.5})
    sink.export([track])
    sink.close()

    (record,) = receiver.records()
    assert record.event_name == "flag_sidecar.track"
    assert attributes(record) == {
        "flag_sidecar.track.name": "checkout",
        "feature_flag.context.id": "ada",
        "flag_sidecar.event.id": track.event_id,
    }
    assert plain(record.body) == {
        "evaluationContext": {"plan": "pro", "targetingKey": "ada"},
        "details": {"value": 12.5},
    }


def test_the_pipeline_sends_one_request_per_batch(receiver):
    events = pipeline(f"otlp:endpoint={receiver.endpoint},max_events=50", flush_interval=3600)
    events.start()
    for i in range(120):
        events.add_evaluation(Evaluation("f", True, "on", Reason.SPLIT, 1), f"u{i}")
    eventually(lambda: len(receiver.accepted()) == 2)  # two full batches, the third one still open
    events.close(5)

    assert [len(r.records) for r in receiver.accepted()] == [50, 50, 20]
    users = [attributes(r)["feature_flag.context.id"] for r in receiver.records()]
    assert users == [f"u{i}" for i in range(120)]


def test_a_batch_over_max_request_mb_is_split_into_several_requests(receiver):
    sink = exporter(f"otlp:endpoint={receiver.endpoint},max_request_mb=0.01")
    events = [event(Reason.STATIC, "v", "x" * 1000) for _ in range(30)]
    sink.export(events)
    sink.close()

    sizes = [r.request.ByteSize() for r in receiver.accepted()]
    assert len(sizes) > 2
    assert max(sizes) <= 0.01 * 1024 * 1024
    assert receiver.event_ids() == [e.event_id for e in events]


def test_events_wait_in_the_spool_while_the_collector_is_down_then_arrive(tmp_path: Path):
    port = free_port()
    events = pipeline(f"otlp:endpoint=http://127.0.0.1:{port}", tmp_path / "spool", flush_interval=0.05)
    events.start()
    try:
        failed = event(Reason.ERROR, "", None, error_code=ErrorCode.GENERAL)
        expected = [event(Reason.TARGETING_MATCH), failed]
        for e in expected:
            events.add_event(e)
        eventually(lambda: events.stats()["otlp"]["retried"] >= 2 and events.stats()["otlp"]["spooled"] >= 2)
        receiver = OtlpReceiver(port=port)  # the collector comes up
        try:
            eventually(lambda: len(receiver.records()) == 2, timeout=10)
            found = [attributes(r) for r in receiver.records()]
            assert [f["flag_sidecar.event.id"] for f in found] == [e.event_id for e in expected]
            # Through the spool (JSON) and back: the reason and the error are still there.
            assert [f["feature_flag.result.reason"] for f in found] == ["targeting_match", "error"]
            assert found[1]["error.type"] == "general"
        finally:
            receiver.close()
    finally:
        events.close(1)
    assert events.stats()["otlp"]["dropped"] == 0


def test_unavailable_is_retried_and_invalid_argument_is_dead_lettered(tmp_path: Path):
    answers = {0: (grpc.StatusCode.UNAVAILABLE, "restarting", None)}
    receiver = OtlpReceiver(answer=lambda n: answers.get(n))
    try:
        events = pipeline(f"otlp:endpoint={receiver.endpoint}", tmp_path / "spool", flush_interval=0.02)
        events.start()
        first = event(Reason.STATIC)
        events.add_event(first)
        eventually(lambda: receiver.event_ids() == [first.event_id])
        answers[2] = (grpc.StatusCode.INVALID_ARGUMENT, "bad record", None)
        second = event(Reason.STATIC)
        events.add_event(second)
        eventually(lambda: events.stats()["otlp"]["dead_lettered"] == 1)
        events.close(1)
    finally:
        receiver.close()
    assert len(receiver.received) == 3
    dead = (tmp_path / "spool" / "otlp" / "dead-letter.jsonl").read_text()
    assert second.event_id in dead
    assert "INVALID_ARGUMENT: bad record" in dead


def test_retry_info_sets_the_delay_and_makes_resource_exhausted_retryable():
    receiver = OtlpReceiver(
        answer=lambda n: [
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", 7.0),
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "too big", None),
            (grpc.StatusCode.UNAVAILABLE, "busy", 3.0),
        ][n]
    )
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    try:
        with pytest.raises(RetryableExportError, match="RESOURCE_EXHAUSTED: slow down") as throttled:
            sink.export([event(Reason.STATIC)])
        assert throttled.value.retry_after == 7.0
        # Without RetryInfo, RESOURCE_EXHAUSTED is not retryable (the OTLP specification).
        with pytest.raises(PermanentExportError, match="too big"):
            sink.export([event(Reason.STATIC)])
        with pytest.raises(RetryableExportError) as busy:
            sink.export([event(Reason.STATIC)])
        assert busy.value.retry_after == 3.0
    finally:
        sink.close()
        receiver.close()


def test_a_partial_success_is_logged_counted_and_not_retried(caplog: pytest.LogCaptureFixture):
    receiver = OtlpReceiver(answer=lambda _n: 1)
    sink = exporter(f"otlp:endpoint={receiver.endpoint}")
    try:
        with caplog.at_level(logging.WARNING, "sidecar.events.otlp"):
            sink.export([event(Reason.STATIC), event(Reason.STATIC)])
    finally:
        sink.close()
        receiver.close()
    assert len(receiver.received) == 1
    assert sink.rejected == 1
    assert "rejected 1 of 2 records (not retried): too old" in caplog.text


def test_headers_and_gzip_reach_the_collector(receiver):
    sink = exporter(
        f"otlp:endpoint={receiver.endpoint},headers=Authorization:Bearer t0k;X-Tenant:shop,compression=gzip"
    )
    sink.export([event(Reason.STATIC)])
    sink.close()

    (received,) = receiver.accepted()
    assert received.metadata["authorization"] == "Bearer t0k"
    assert received.metadata["x-tenant"] == "shop"
    assert received.metadata["user-agent"].startswith("flag-sidecar-otlp/1")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("otlp-certs"))


def test_tls_and_mutual_tls_to_the_collector(certs: Certificates):
    server_credentials = grpc.ssl_server_credentials(
        [(certs.server.key_bytes, certs.server.cert_bytes)],
        root_certificates=certs.ca.cert_bytes,
        require_client_auth=True,
    )
    receiver = OtlpReceiver(credentials=server_credentials)
    endpoint = f"https://localhost:{receiver.port}"
    try:
        sink = exporter(
            f"otlp:endpoint={endpoint},ca_file={certs.ca.cert},cert_file={certs.client.cert},"
            f"key_file={certs.client.key},timeout=5"
        )
        sink.export([event(Reason.STATIC)])
        sink.close()
        assert len(receiver.records()) == 1
        # Without the client certificate the handshake fails: retryable (UNAVAILABLE), not lost.
        anonymous = exporter(f"otlp:endpoint={endpoint},ca_file={certs.ca.cert},timeout=5")
        with pytest.raises(RetryableExportError, match="UNAVAILABLE"):
            anonymous.export([event(Reason.STATIC)])
        anonymous.close()
    finally:
        receiver.close()


def test_endpoints_follow_opentelemetrys_rules():
    assert parse_endpoint("http://127.0.0.1:4317", None) == ("127.0.0.1:4317", False)
    assert parse_endpoint("https://collector", None) == ("collector:4317", True)
    assert parse_endpoint("collector:4317", None) == ("collector:4317", True)
    assert parse_endpoint("collector:4317", True) == ("collector:4317", False)
    assert parse_endpoint("[::1]:4318", True) == ("[::1]:4318", False)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("otlp", "option 'endpoint' is required"),
        ("otlp:endpoint=ftp://x", "expected http://, https:// or HOST:PORT"),
        ("otlp:endpoint=http://x:4317/v1/logs", "no path"),
        ("otlp:endpoint=http://x:99999", "the port is not a number"),
        ("otlp:endpoint=https://x,insecure=true", "is https:// (TLS) but insecure=true"),
        ("otlp:endpoint=http://x,ca_file=/etc/ca.pem", "need a TLS endpoint"),
        ("otlp:endpoint=https://x,ca_file=/nonexistent/ca.pem", "ca_file '/nonexistent/ca.pem'"),
        ("otlp:endpoint=https://x,cert_file=/c.pem", "cert_file and key_file go together"),
        ("otlp:endpoint=http://x,headers=grpc-timeout:1", "header 'grpc-timeout'"),
        ("otlp:endpoint=http://x,compression=zstd", "expected one of none, gzip"),
        ("otlp:endpoint=http://x,insecure=maybe", "expected true or false"),
        ("otlp:endpoint=http://x,topic=t", "unknown option(s) topic"),
    ],
)
def test_bad_options_are_clear_errors(spec: str, message: str):
    with pytest.raises(SpecError) as error:
        build_pipeline(PipelineConfig(exporters=[spec]))
    assert message in str(error.value)
    assert str(error.value).startswith(f"exporter {spec}:")


def test_serve_sends_evaluations_to_the_collector_and_flushes_on_sigterm(serve, receiver):
    sidecar = serve("--exporter", f"otlp:endpoint={receiver.endpoint}", "--flush-interval", "3600")
    with grpc.insecure_channel(sidecar.address()) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        user = evaluation_pb2.User(id="ada")
        stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=user), timeout=5)
        with pytest.raises(grpc.RpcError) as missing:
            stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="nope", user=user), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert receiver.received == []  # a long flush interval: only shutdown flushes
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=20) == 0, sidecar.log

    found = {a["feature_flag.key"]: a for a in map(attributes, receiver.records())}
    assert found["banner-color"]["feature_flag.context.id"] == "ada"
    assert found["banner-color"]["feature_flag.result.variant"]
    assert found["nope"]["error.type"] == "flag_not_found"
    assert found["nope"]["feature_flag.result.reason"] == "error"
