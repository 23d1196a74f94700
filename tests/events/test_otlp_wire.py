"""otlp_wire against opentelemetry-proto's message classes: what it writes, they decode, and it is
the message they would have built, at every length where a length prefix grows a byte."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from sidecar.events.exporters import otlp_wire as wire
from sidecar.events.exporters.otlp import any_value

LENGTHS = [0, 1, 100, 119, 120, 121, 127, 128, 129, 16383, 16384, 70000]


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, 2**35, 2**64 - 1])
def test_varint_is_protobufs(n: int) -> None:
    value = AnyValue(int_value=n - 2**64 if n >= 2**63 else n)
    assert wire.varint(n) == value.SerializeToString()[1:]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("char", ["x", "é"])
def test_a_string_attribute_is_the_keyvalue_message(length: int, char: str) -> None:
    text = char * length
    expected = LogRecord()
    expected.attributes.add(key="feature_flag.context.id").value.string_value = text
    written = wire.string_attribute("feature_flag.context.id")(text)
    assert written == wire.attribute("feature_flag.context.id", wire.string_value(text))
    assert LogRecord.FromString(written) == expected


SCALARS = [None, "", "red", True, False, 0, -1, 2**63 - 1, -(2**63), 2**64, 0.0, -0.0, 2.5]


@pytest.mark.parametrize("value", SCALARS)
def test_a_scalar_value_is_the_anyvalue_message(value: Any) -> None:
    written = wire.scalar_value(value)
    assert written is not None
    decoded = AnyValue.FromString(written)
    assert decoded == any_value(value)
    assert decoded.WhichOneof("value") == any_value(value).WhichOneof("value")


def test_objects_and_arrays_are_left_to_the_message_classes() -> None:
    assert wire.scalar_value({"a": 1}) is None
    assert wire.scalar_value([1]) is None


@pytest.mark.parametrize("records", [0, 1, 3, 500])
def test_a_request_is_the_export_logs_service_request(records: int) -> None:
    resource = Resource()
    resource.attributes.add(key="service.name").value.string_value = "flag-sidecar"
    scope = InstrumentationScope(name="flag-sidecar", version="1.2.3")
    common = wire.attribute("p", wire.string_value("q"))
    encoder = wire.RecordEncoder("feature_flag.evaluation", common, bytes)
    expected = ExportLogsServiceRequest()
    resource_logs = expected.resource_logs.add(resource=resource)
    scope_logs: ScopeLogs = resource_logs.scope_logs.add(scope=scope)
    framed = []
    for i in range(records):
        user = f"user-{i}" * (i % 40)
        answer = wire.attribute("feature_flag.key", wire.string_value(f"flag-{i}"))
        framed.append(encoder.record(10**18 + i, answer, wire.string_attribute("ctx")(user)))
        record = scope_logs.log_records.add(time_unix_nano=10**18 + i, observed_time_unix_nano=10**18 + i)
        record.event_name = "feature_flag.evaluation"
        for key, text in (("feature_flag.key", f"flag-{i}"), ("ctx", user), ("p", "q")):
            record.attributes.add(key=key, value=AnyValue(string_value=text))
    written = wire.request(resource.SerializeToString(), scope.SerializeToString(), framed)
    assert ExportLogsServiceRequest.FromString(written) == expected


def test_an_answer_is_reused_only_for_the_same_value() -> None:
    encoder = wire.RecordEncoder("e", b"", bytes)
    built: list[Any] = []

    def answer(value: Any) -> bytes:
        def build() -> bytes:
            built.append(value)
            return wire.scalar_value(value) or b"?"

        return encoder.answer(("flag", "on"), value, build)

    shared = {"a": 1}
    for value in (1, 1, True, 1, 1.0, 0.0, -0.0, "1", shared, shared, {"a": 1}):
        answer(value)
    # 1 once; True, then 1 again (the entry held True), 1.0, 0.0, -0.0 (floats by identity only),
    # "1", the dict once for the same object and again for an equal but other one.
    assert built == [1, True, 1, 1.0, 0.0, -0.0, "1", shared, {"a": 1}]
