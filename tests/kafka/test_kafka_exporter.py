"""The Kafka exporter against a real broker (conftest.py): every event arrives, counted by eventId
with a real consumer, in a steady stream, across a 30 s broker outage, through a SIGKILL of the
sidecar while the broker is down, and through a SIGTERM under load. Duplicates are allowed: they
are counted and reported (`-s` shows them; the steady stream must have none)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from sidecar.events import EventPipeline, FeatureEvent, PipelineConfig, RetryPolicy, build_pipeline
from sidecar.events.options import SpecError
from sidecar.server.metrics import SidecarMetrics
from tests.conftest import eventually
from tests.events.helpers import evaluation
from tests.events.test_cli_events import call

from .broker import SASL_PASSWORD, SASL_USER, KafkaBroker, TopicReader

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "events" / "driver.py"
FAST_RETRY = RetryPolicy(initial=0.05, maximum=0.5)
# Generous: the broker shares 2 loaded cores with the suite (the session's broker starts within it).
pytestmark = pytest.mark.timeout(400)


def kafka_spec(broker: KafkaBroker, topic: str, *extra: str) -> str:
    return ",".join([f"kafka:brokers={broker.bootstrap}", f"topic={topic}", *extra])


def pipeline_for(spec: str, tmp_path: Path, **config: object) -> EventPipeline:
    options: dict[str, object] = {
        "flush_interval": 0.05,
        "max_events_in_memory": 500,
        "spool_dir": tmp_path / "spool",
        "retry": FAST_RETRY,
        "shutdown_grace": 5.0,
    }
    options.update(config)
    pipeline = build_pipeline(PipelineConfig(exporters=[spec], **options))  # type: ignore[arg-type]
    pipeline.start()
    return pipeline


@pytest.fixture
def reader(running_broker: KafkaBroker, topic: str) -> Iterator[TopicReader]:
    r = TopicReader(running_broker, topic)
    yield r
    r.close()


def report(name: str, reader: TopicReader, sent: int) -> None:
    received = len(reader.counts)
    print(f"\n{name}: {sent} events sent, {received} distinct received, {reader.duplicates} duplicates")


def test_steady_stream_arrives_once_with_key_header_and_json(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    pipeline = pipeline_for(kafka_spec(running_broker, topic), tmp_path)
    events = [FeatureEvent.from_evaluation(evaluation(), f"user-{i % 50}") for i in range(20_000)]
    for start in range(0, len(events), 1000):
        for event in events[start : start + 1000]:
            pipeline.add_event(event)
        time.sleep(0.01)
    eventually(lambda: pipeline.stats()["kafka"]["exported"] == 20_000, timeout=60)
    reader.keep = True
    assert reader.wait_for(e.event_id for e in events) == set()
    reader.poll(0.5)
    report("steady stream", reader, len(events))
    assert reader.duplicates == 0
    stats = pipeline.stats()["kafka"]
    pipeline.close(2)
    assert stats["dropped"] == 0
    assert stats["retried"] == 0
    by_id = {e.event_id: e for e in events}
    for msg in reader.messages[:200]:
        body = json.loads(msg.value())
        event = by_id[dict(msg.headers())["eventId"].decode()]
        assert body == event.to_json()  # go-feature-flag's names, eventId included
        assert msg.key() == event.user_key.encode()  # key=user: one user's events in one partition
    # One user's events keep their order.
    user_0 = [dict(m.headers())["eventId"].decode() for m in reader.messages if m.key() == b"user-0"]
    expected = [e.event_id for e in events if e.user_key == "user-0"]
    assert user_0 == expected


def test_flag_key_and_no_key(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    pipeline = pipeline_for(kafka_spec(running_broker, topic, "key=flag"), tmp_path)
    event = FeatureEvent.from_evaluation(evaluation(flag="beta-banner"), "user-1")
    pipeline.add_event(event)
    reader.keep = True
    assert reader.wait_for([event.event_id]) == set()
    pipeline.close(2)
    assert reader.messages[0].key() == b"beta-banner"
    with pytest.raises(SpecError, match="key="):
        build_pipeline(PipelineConfig(exporters=[kafka_spec(running_broker, topic, "key=session")]))
    with pytest.raises(SpecError, match="'topic' is required"):
        build_pipeline(PipelineConfig(exporters=[f"kafka:brokers={running_broker.bootstrap}"]))


def test_a_broker_outage_of_30_seconds_loses_nothing(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    pipeline = pipeline_for(kafka_spec(running_broker, topic, "timeout=5"), tmp_path)
    ids: list[str] = []
    stop = threading.Event()

    def produce() -> None:  # a steady 1,000 events/s through the outage
        n = 0
        while not stop.is_set():
            for _ in range(50):
                event = FeatureEvent.from_evaluation(evaluation(), f"user-{n % 100}")
                n += 1
                pipeline.add_event(event)
                ids.append(event.event_id)
            time.sleep(0.05)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        eventually(lambda: pipeline.stats()["kafka"]["exported"] >= 2000, timeout=30)
        running_broker.stop()
        down = time.monotonic()
        eventually(lambda: pipeline.stats()["kafka"]["spooled"] > 0, timeout=20)
        time.sleep(max(0.0, 30 - (time.monotonic() - down)))
        running_broker.start()
        time.sleep(2)
    finally:
        stop.set()
        producer.join(5)
    sent = list(ids)
    missing = reader.wait_for(sent, timeout=90)
    assert not missing, (len(missing), sorted(missing)[:3], pipeline.stats(), pipeline.export_errors())
    eventually(lambda: pipeline.stats()["kafka"]["spool_pending"] == 0, timeout=30)
    stats = pipeline.stats()["kafka"]
    errors = pipeline.export_errors()["kafka"]
    pipeline.close(2)
    report("30 s broker outage", reader, len(sent))
    assert stats["dropped"] == 0
    assert stats["exported"] == len(sent)  # acknowledged once each into the counters
    assert stats["replayed"] > 0
    assert stats["retried"] > 0
    assert errors.get("broker_unreachable", 0) > 0


def start_driver(tmp_path: Path, spec: str, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(DRIVER), "--exporter", spec, "--spool", str(tmp_path / "spool"), *args],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "driver.log", "a"),  # noqa: SIM115 - closed with the process
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def stop_driver(process: subprocess.Popen[str], timeout: float = 30) -> dict[str, dict[str, int]]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def read_stats(path: Path) -> dict[str, int]:
    try:
        return json.loads(path.read_text())["kafka"]
    except (OSError, ValueError):
        return {}


def test_sigkill_while_the_broker_is_down_then_restart_with_the_same_spool(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    spec = kafka_spec(running_broker, topic)
    sent, stats_file = tmp_path / "sent.txt", tmp_path / "stats.json"
    running_broker.stop()
    first = start_driver(
        tmp_path,
        spec,
        *("--count", "3000", "--rate", "3000", "--sent", str(sent), "--stats", str(stats_file)),
    )
    try:
        # Every event handed over is in the spool (the exports fail): then kill without warning.
        eventually(lambda: read_stats(stats_file).get("spool_pending") == 3000, timeout=40)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    running_broker.start()
    second = start_driver(tmp_path, spec, "--rate", "0")  # only replays the spool
    ids = sent.read_text().split()
    assert len(ids) == 3000
    try:
        # As long as the outage test's wait: the reader's consumer rejoins its group after the restart.
        missing = reader.wait_for(ids, timeout=90)
        if missing:  # whose fault: the replay's counts and what is still spooled tell
            segments = sorted(path.name for path in (tmp_path / "spool" / "kafka").glob("*.seg"))
            raise AssertionError((len(missing), sorted(missing)[:3], stop_driver(second), segments))
        eventually(lambda: not list((tmp_path / "spool" / "kafka").glob("*.seg")), timeout=30)
    finally:
        if second.poll() is None:
            stats = stop_driver(second)
    report("SIGKILL while the broker is down", reader, len(ids))
    assert stats["kafka"]["replayed"] == 3000
    assert stats["kafka"]["dropped"] == 0


def test_sigterm_under_load_delivers_or_spools_everything(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    spec = kafka_spec(running_broker, topic)
    sent = tmp_path / "sent.txt"
    process = start_driver(tmp_path, spec, *("--rate", "20000", "--sent", str(sent), "--max-events", "2000"))
    time.sleep(3)
    stats = stop_driver(process)["kafka"]
    ids = sent.read_text().split()
    assert stats["dropped"] == 0
    assert stats["exported"] + stats["spool_pending"] == len(ids) == stats["enqueued"]
    if stats["spool_pending"]:
        # The grace period ran out: the next start delivers the rest. It is stopped only once the
        # spool is empty: a stop during the replay would leave the rest spooled again (kept, not lost,
        # but not yet in the topic).
        second = start_driver(tmp_path, spec, "--rate", "0")
        try:
            eventually(lambda: not list((tmp_path / "spool" / "kafka").glob("*.seg")), timeout=60)
        finally:
            stop_driver(second)
    assert reader.wait_for(ids, timeout=60) == set()
    report("SIGTERM under load", reader, len(ids))


def test_a_missing_topic_is_a_clear_counted_error_and_the_events_wait(
    running_broker: KafkaBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"later-{time.monotonic_ns()}"
    caplog.set_level(logging.WARNING, logger="sidecar.events")
    pipeline = pipeline_for(kafka_spec(running_broker, topic, "timeout=3"), tmp_path)
    events = [FeatureEvent.from_evaluation(evaluation(), f"u{i}") for i in range(100)]
    for event in events:
        pipeline.add_event(event)
    eventually(lambda: pipeline.export_errors()["kafka"].get("unknown_topic", 0) >= 1, timeout=30)
    assert f"topic {topic!r} does not exist" in caplog.text
    metrics = SidecarMetrics(process_metrics=False)
    metrics.add_export_errors(pipeline.export_errors)
    scraped = generate_latest(metrics.registry).decode()
    assert 'flag_sidecar_events_export_errors_total{exporter="kafka",reason="unknown_topic"}' in scraped
    assert pipeline.stats()["kafka"]["exported"] == 0
    running_broker.create_topic(topic)
    reader = TopicReader(running_broker, topic)
    try:
        assert reader.wait_for(e.event_id for e in events) == set()
    finally:
        reader.close()
    eventually(lambda: pipeline.stats()["kafka"]["exported"] == 100, timeout=30)
    assert pipeline.stats()["kafka"]["dropped"] == 0
    pipeline.close(2)


def test_events_the_full_producer_queue_never_took_are_retried_not_counted(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    # A queue of 5 messages held 0.5 s each (linger) cannot take a batch within the 1 s timeout:
    # what never entered it must be retried, not counted as exported and lost.
    spec = kafka_spec(
        running_broker, topic, "timeout=1", "linger_ms=500", "config=queue.buffering.max.messages:5"
    )
    pipeline = pipeline_for(spec, tmp_path)
    events = [FeatureEvent.from_evaluation(evaluation(), f"u{i}") for i in range(60)]
    for event in events:
        pipeline.add_event(event)
    eventually(lambda: pipeline.export_errors()["kafka"].get("queue_full", 0) >= 1, timeout=60)
    assert reader.wait_for((e.event_id for e in events), timeout=120) == set()
    eventually(lambda: pipeline.stats()["kafka"]["exported"] == 60, timeout=60)
    stats = pipeline.stats()["kafka"]
    pipeline.close(2)
    assert stats["exported"] == 60
    assert stats["dropped"] == 0


def test_an_event_over_the_size_limit_is_dead_lettered_alone(
    running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    pipeline = pipeline_for(kafka_spec(running_broker, topic, "max_message_bytes=2000"), tmp_path)
    small = [FeatureEvent.from_evaluation(evaluation(), f"u{i}") for i in range(20)]
    big = FeatureEvent.from_evaluation(evaluation(value="x" * 5000), "big")
    for event in [*small[:10], big, *small[10:]]:
        pipeline.add_event(event)
    eventually(lambda: pipeline.stats()["kafka"]["dead_lettered"] == 1, timeout=30)
    assert reader.wait_for(e.event_id for e in small) == set()
    reader.poll(1.0)
    assert big.event_id not in reader.counts
    stats = pipeline.stats()["kafka"]
    errors = pipeline.export_errors()["kafka"]
    pipeline.close(2)
    assert stats["exported"] == 20
    assert stats["dropped"] == 0
    assert errors == {"message_too_large": 1}
    [line] = (tmp_path / "spool" / "kafka" / "dead-letter.jsonl").read_text().splitlines()
    dead = json.loads(line)
    assert dead["event"]["eventId"] == big.event_id
    assert "too large" in dead["reason"].lower()


def test_sasl_options_pass_through_and_a_wrong_password_is_an_authentication_error(
    running_broker: KafkaBroker,
    topic: str,
    reader: TopicReader,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar.events")
    sasl = [
        f"brokers={running_broker.sasl_bootstrap}",
        "security_protocol=SASL_PLAINTEXT",
        "sasl_mechanism=PLAIN",
    ]
    wrong = ",".join(["kafka:name=wrong", f"topic={topic}", "timeout=2", *sasl, f"sasl_username={SASL_USER}"])
    pipeline = pipeline_for(wrong + ",sasl_password=not-it", tmp_path / "wrong")
    event = FeatureEvent.from_evaluation(evaluation(), "u1")
    pipeline.add_event(event)
    eventually(lambda: pipeline.export_errors()["wrong"].get("authentication", 0) >= 1, timeout=30)
    assert "check sasl_username/sasl_password" in caplog.text
    assert pipeline.stats()["wrong"]["exported"] == 0
    pipeline.close(1)
    right = ",".join(["kafka:name=right", f"topic={topic}", "timeout=5", *sasl])
    pipeline = pipeline_for(
        f"{right},sasl_username={SASL_USER},sasl_password={SASL_PASSWORD}", tmp_path / "ok"
    )
    pipeline.add_event(event)
    assert reader.wait_for([event.event_id]) == set()
    pipeline.close(2)


def test_serve_with_the_exporter_in_its_config_file(
    serve, running_broker: KafkaBroker, topic: str, reader: TopicReader, tmp_path: Path
) -> None:
    config = tmp_path / "sidecar.yaml"
    config.write_text(
        f"exporter:\n  - kafka:brokers={running_broker.bootstrap},topic={topic},key=flag\n"
        f"spool_dir: {tmp_path / 'spool'}\nflush_interval: 0.05\n"
    )
    sidecar = serve("--config", str(config))
    expected = call(sidecar.address(), 10)
    reader.keep = True
    eventually(lambda: reader.poll(0.2) or len(reader.counts) == expected, timeout=60)
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=30) == 0, sidecar.log
    kinds = {json.loads(m.value())["kind"] for m in reader.messages}
    assert kinds == {"feature", "tracking"}
    assert b"banner-color" in {m.key() for m in reader.messages}
