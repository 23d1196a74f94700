"""The Kafka exporter's protobuf payload (`format=protobuf`) against the real broker: every event
arrives once, decodes with the generated flagsidecar.v1.ExportedEvent and equals its JSON form,
counted by eventId; every JSON type of value round-trips; what was spooled replays in protobuf;
the content-type header says which format; a bad format stops the start (exit 2)."""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from google.protobuf import json_format

from flagsidecar.v1 import evaluation_pb2, event_pb2
from sidecar.events import FeatureEvent, TrackingEvent
from sidecar.events.exporters.kafka_payload import CONTENT_TYPES, encode_json
from sidecar.events.scheduler import encode_batch
from sidecar.events.spool import Spool
from tests.conftest import eventually
from tests.events.helpers import error_evaluation, evaluation
from tests.events.test_cli_events import call
from tests.serve_process import run_cli

from .broker import KafkaBroker, TopicReader
from .test_kafka_exporter import kafka_spec, pipeline_for, report

pytestmark = pytest.mark.timeout(400)

PROTOBUF = CONTENT_TYPES["protobuf"]
# A value of every JSON type, nested ones holding every type again.
VALUES: list[Any] = [
    "text with ünïcode",
    "",
    42,
    -1.5,
    0,
    True,
    False,
    None,
    {"a": 1, "b": {"c": [1, "two", False, None, {}]}, "d": None},
    [1, "two", True, None, {"x": [2.5]}, []],
    {},
    [],
]


@pytest.fixture
def reader(running_broker: KafkaBroker, topic: str) -> Any:
    r = TopicReader(running_broker, topic)
    r.keep = True
    yield r
    r.close()


def decoded(msg: Message) -> event_pb2.ExportedEvent:
    headers = dict(msg.headers() or [])
    assert headers["content-type"] == PROTOBUF
    event = event_pb2.ExportedEvent.FromString(msg.value())
    assert event.event_id == headers["eventId"].decode()
    return event


def as_message(event: FeatureEvent | TrackingEvent) -> event_pb2.ExportedEvent:
    """The event's JSON form (the json format's very bytes) read into the generated class."""
    return json_format.Parse(encode_json([event])[0], event_pb2.ExportedEvent())


def test_protobuf_stream_arrives_once_and_equals_the_json_form(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    pipeline = pipeline_for(kafka_spec(running_broker, topic, "format=protobuf"), tmp_path)
    events: list[FeatureEvent | TrackingEvent] = []
    for i in range(6000):
        if i % 100 == 7:
            events.append(FeatureEvent.from_evaluation(error_evaluation(), f"user-{i % 50}"))
        elif i % 100 == 9:
            context = {"plan": "pro", "anonymous": True, "n": i}
            events.append(TrackingEvent("checkout", f"user-{i % 50}", context, {"value": 9.5, "ok": True}))
        else:
            value = {"engine": "classic", "maxResults": i % 7} if i % 2 else True
            events.append(FeatureEvent.from_evaluation(evaluation(value=value), f"user-{i % 50}"))
    for event in events:
        pipeline.add_event(event)
    assert reader.wait_for(e.event_id for e in events) == set()
    reader.poll(0.5)
    report("protobuf stream", reader, len(events))
    assert reader.duplicates == 0
    stats = pipeline.stats()["kafka"]
    pipeline.close(2)
    assert stats["exported"] == len(events)
    assert stats["dropped"] == 0
    by_id = {e.event_id: e for e in events}
    for msg in reader.messages:
        message = decoded(msg)
        event = by_id[message.event_id]
        assert message == as_message(event)
        assert msg.key() == event.user_key.encode()
    # Spot checks in the generated class's own terms.
    failed = next(decoded(m) for m in reader.messages if decoded(m).variation == "SdkDefault")
    assert failed.default
    assert failed.value.WhichOneof("kind") == "null_value"
    assert failed.error_code == evaluation_pb2.FLAG_NOT_FOUND
    tracking = next(decoded(m) for m in reader.messages if decoded(m).kind == "tracking")
    assert tracking.context_kind == "anonymousUser"
    assert dict(tracking.evaluation_context)["targetingKey"] == tracking.user_key
    assert dict(tracking.tracking_event_details) == {"value": 9.5, "ok": True}


def test_a_value_of_every_json_type_round_trips(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    pipeline = pipeline_for(kafka_spec(running_broker, topic, "format=protobuf"), tmp_path)
    events = [FeatureEvent.from_evaluation(evaluation(value=v), f"user-{i}") for i, v in enumerate(VALUES)]
    # Not JSON: NaN is written as null by either format, as every exporter does.
    events.append(FeatureEvent.from_evaluation(evaluation(value=[math.nan, 1]), "user-nan"))
    for event in events:
        pipeline.add_event(event)
    assert reader.wait_for(e.event_id for e in events) == set()
    pipeline.close(2)
    by_id = {e.event_id: e for e in events}
    for msg in reader.messages:
        message = decoded(msg)
        event = by_id[message.event_id]
        value = json.loads(json_format.MessageToJson(message.value))
        assert value == json.loads(encode_json([event])[0])["value"]
        assert message == as_message(event)
    assert len(reader.messages) == len(events)


def test_the_spool_replays_to_kafka_in_protobuf(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    # Spooled as an outage leaves them (what a SIGKILL left behind), then replayed at start.
    events: list[FeatureEvent | TrackingEvent] = [
        FeatureEvent.from_evaluation(evaluation(value=VALUES[i % len(VALUES)]), f"user-{i}")
        for i in range(2000)
    ]
    events.append(TrackingEvent("played", "user-1", {"plan": "free"}, {"seconds": 12}))
    spool = Spool(tmp_path / "spool" / "kafka", max_bytes=64 * 1024**2, fsync=False)
    for start in range(0, len(events), 500):
        batch = events[start : start + 500]
        spool.append(encode_batch(batch), len(batch))
    spool.close()
    pipeline = pipeline_for(kafka_spec(running_broker, topic, "format=protobuf"), tmp_path)
    assert reader.wait_for(e.event_id for e in events) == set()
    eventually(lambda: pipeline.stats()["kafka"]["replayed"] == len(events), timeout=30)
    pipeline.close(2)
    by_id = {e.event_id: e for e in events}
    for msg in reader.messages:
        message = decoded(msg)
        assert message == as_message(by_id[message.event_id])


def test_serve_with_protobuf_in_its_config_file(
    serve: Any, running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        f"exporter:\n  - kafka:brokers={running_broker.bootstrap},topic={topic},format=protobuf\n"
        f"spool_dir: {tmp_path / 'spool'}\nflush_interval: 0.05\n"
    )
    sidecar = serve("--config", str(config))
    expected = call(sidecar.address(), 10)
    eventually(lambda: reader.poll(0.2) or len(reader.counts) == expected, timeout=60)
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=30) == 0, sidecar.log
    messages = [decoded(m) for m in reader.messages]
    assert {m.kind for m in messages} == {"feature", "tracking"}
    assert all(m.creation_date > time.time() - 600 for m in messages)


def test_json_stays_the_default_and_says_so(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    pipeline = pipeline_for(kafka_spec(running_broker, topic), tmp_path)
    event = FeatureEvent.from_evaluation(evaluation(), "user-1")
    pipeline.add_event(event)
    assert reader.wait_for([event.event_id]) == set()
    pipeline.close(2)
    (msg,) = reader.messages
    assert dict(msg.headers())["content-type"] == b"application/json"
    assert json.loads(msg.value()) == event.to_json()


def test_a_bad_format_stops_the_start(sample_flag_file: Path, tmp_path: Path) -> None:
    spec = "kafka:brokers=127.0.0.1:1,topic=t,format=avro"
    result = run_cli("serve", "--flags", str(sample_flag_file), "--listen", "127.0.0.1:0", "--exporter", spec)
    assert result.returncode == 2, result.stderr
    assert "format='avro': expected one of json, protobuf" in result.stderr
    # The config file's form too.
    config = tmp_path / "sidecar.yaml"
    config.write_text(f"flags: {sample_flag_file}\nexporter:\n  - {spec}\n")
    result = run_cli("serve", "--config", str(config), "--listen", "127.0.0.1:0")
    assert result.returncode == 2, result.stderr
    assert "format='avro': expected one of json, protobuf" in result.stderr
