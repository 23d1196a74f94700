"""The Kafka exporter's payload encoders without a broker: the protobuf form reads back into the
generated class equal to the JSON form, and the Go client's decoding test
(clients/go/exported_event_test.go) reads the very bytes the encoder writes today:
clients/go/testdata/exported_events.bin (each message length-prefixed, protodelim's framing) with
their JSON forms beside them. `FLAG_SIDECAR_WRITE_GOLDEN=1` rewrites both after a proto change."""

from __future__ import annotations

import json
import os
from pathlib import Path

from google.protobuf import json_format

from flagsidecar.v1 import event_pb2
from sidecar.events import FeatureEvent, TrackingEvent
from sidecar.events.exporters.kafka_payload import encode_json, encode_protobuf, event_id_of
from sidecar.events.feature_event import Event
from tests.events.helpers import error_evaluation, evaluation

TESTDATA = Path(__file__).resolve().parents[2] / "clients" / "go" / "testdata"
VALUES = ["text", 42, -1.5, True, None, {"a": {"b": [1, "x", None, False]}}, [1, "two", {}, []]]


def golden_events() -> list[Event]:
    events: list[Event] = [
        FeatureEvent.from_evaluation(evaluation(value=v), f"user-{i}") for i, v in enumerate(VALUES)
    ]
    events.append(FeatureEvent.from_evaluation(error_evaluation(), "user-e", {"anonymous": True}))
    events.append(TrackingEvent("checkout", "user-t", {"plan": "pro"}, {"value": 9.5}))
    for i, event in enumerate(events):  # fixed, so the bytes are too
        event.event_id = f"golden-{i}"
        event.creation_date = 1_763_719_341
    return events


def framed(values: list[bytes]) -> bytes:
    out = bytearray()
    for value in values:
        size = len(value)
        while size > 0x7F:
            out.append((size & 0x7F) | 0x80)
            size >>= 7
        out.append(size)
        out += value
    return bytes(out)


def test_protobuf_reads_back_equal_to_the_json_form() -> None:
    events = golden_events()
    for event, value, text in zip(events, encode_protobuf(events), encode_json(events), strict=True):
        message = event_pb2.ExportedEvent.FromString(value)
        assert message == json_format.Parse(text, event_pb2.ExportedEvent())
        assert event_id_of("protobuf", value) == event.event_id
        assert event_id_of("json", text) == event.event_id
    assert event_id_of("protobuf", b"\xff\xff") is None


def test_the_go_clients_golden_file_is_what_the_encoder_writes() -> None:
    events = golden_events()
    binary = framed(encode_protobuf(events))
    expected = json.dumps([e.to_json() for e in events], indent=1) + "\n"
    if os.environ.get("FLAG_SIDECAR_WRITE_GOLDEN"):
        (TESTDATA / "exported_events.bin").write_bytes(binary)
        (TESTDATA / "exported_events.json").write_text(expected)
    assert (TESTDATA / "exported_events.bin").read_bytes() == binary
    assert (TESTDATA / "exported_events.json").read_text() == expected
