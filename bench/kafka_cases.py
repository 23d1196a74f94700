"""The Kafka exporter against a real single-node broker on this machine (tests/kafka/broker.py):

    .venv/bin/python -m bench.kafka_cases
    .venv/bin/python -m bench.kafka_cases --formats   # JSON against protobuf only

- sustained: events/s from the first add_evaluation until the broker has acknowledged every one
  of N events (the serve defaults: batches of 10,000 events, the exporter's defaults: lz4, acks=all,
  idempotent), the broker on the same 2 cores.
- add_event: DataExporterScheduler.add_event of a prebuilt FeatureEvent with the Kafka exporter
  behind it, its threads running and sending.
- encode: the exporter's cost per event to encode a batch of 10,000 (kafka_payload.ENCODERS), JSON
  and protobuf (`format=protobuf`) in turns; and `sustained` with each format, in turns.
- drain: 1,000,000 events in the spool (written as an outage leaves them: records of 10,000),
  then the time from the pipeline's start until the broker has acknowledged them all.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sidecar.engine.model import Evaluation, Reason
from sidecar.events import DataExporterScheduler, EventPipeline, FeatureEvent
from sidecar.events.exporters import KafkaExporter
from sidecar.events.exporters.kafka_payload import ENCODERS
from sidecar.events.scheduler import encode_batch
from sidecar.events.spool import Spool
from tests.kafka.broker import KafkaBroker

EVALUATION = Evaluation("new-checkout", True, "on", Reason.TARGETING_MATCH, 7)
CONTEXT = {"email": "ana@example.com", "plan": "pro", "$userId": "user-42"}
LOG = logging.getLogger("bench.kafka")


@dataclass
class KafkaResult:
    sustained: list[float]  # events/s
    add_event_us: list[float]
    drain_seconds: list[float]
    drain_events: int
    # Per format ("json", "protobuf"): encoding us/event, and events/s into Kafka, in turns.
    encode_us: dict[str, list[float]] | None = None
    sustained_by_format: dict[str, list[float]] | None = None


def _scheduler(
    broker: KafkaBroker,
    topic: str,
    spool: Spool | None = None,
    format: str = "json",
    buffer_limit: int | None = None,
    buffer_bytes: int | None = None,
) -> DataExporterScheduler:
    exporter = KafkaExporter(broker.bootstrap, topic, format=format)
    return DataExporterScheduler(
        10.0,
        10_000,
        exporter,
        LOG,
        name="kafka",
        spool=spool,
        buffer_limit=buffer_limit,
        buffer_bytes=buffer_bytes,
    )


def _sustained(broker: KafkaBroker, topic: str, events: int, format: str = "json") -> float:
    # Room in memory for all of them (as in bench.event_cases): what is measured is the rate into
    # Kafka, not the memory buffer's limit.
    scheduler = _scheduler(broker, topic, format=format, buffer_limit=events, buffer_bytes=events * 1024)
    pipeline = EventPipeline([scheduler])
    pipeline.start()
    add = pipeline.add_evaluation
    started = time.perf_counter()
    for index in range(events):
        add(EVALUATION, f"user-{index % 1000}", CONTEXT)
    pipeline.flush()
    if not pipeline.wait_idle(300):
        raise RuntimeError(f"kafka did not catch up within 300 s: {scheduler.stats()}")
    elapsed = time.perf_counter() - started
    stats = scheduler.stats()
    pipeline.close(30)
    if stats["exported"] != events:
        raise RuntimeError(f"exported {stats['exported']} of {events} events: {stats}")
    return events / elapsed


def _add_event_us(broker: KafkaBroker, topic: str, number: int, repeats: int) -> list[float]:
    scheduler = _scheduler(broker, topic)
    scheduler.start_daemon()
    event = FeatureEvent.from_evaluation(EVALUATION, "user-42", CONTEXT)
    add_event = scheduler.add_event
    results: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            add_event(event)
        results.append((time.perf_counter() - started) / number * 1e6)
        scheduler.flush()
        scheduler.wait_idle(120)
    scheduler.close(30)
    return results


def _encode_us(repeats: int, size: int = 10_000) -> dict[str, list[float]]:
    """Each format's encoding of one batch, per event, the formats in turns."""
    batch = [FeatureEvent.from_evaluation(EVALUATION, f"user-{i % 1000}", CONTEXT) for i in range(size)]
    results: dict[str, list[float]] = {name: [] for name in ENCODERS}
    for _ in range(repeats):
        for name, encode in ENCODERS.items():
            started = time.perf_counter()
            encode(batch)
            results[name].append((time.perf_counter() - started) / size * 1e6)
    return results


def _sustained_by_format(
    broker: KafkaBroker, topic: str, events: int, repeats: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in ENCODERS}
    names = list(ENCODERS)
    for turn in range(repeats):
        # Each round the other order (A B, B A, ...): the broker's state after a run (its JIT, a
        # log segment rolled) is not charged to one format every time.
        for name in names if turn % 2 == 0 else names[::-1]:
            results[name].append(_sustained(broker, topic, events, name))
    return results


def _drain(broker: KafkaBroker, topic: str, directory: Path, events: int) -> float:
    spool = Spool(directory, max_bytes=4 * 1024**3, fsync=False)
    batch = [FeatureEvent.from_evaluation(EVALUATION, f"user-{i % 1000}", CONTEXT) for i in range(10_000)]
    for _ in range(events // len(batch)):
        spool.append(encode_batch(batch), len(batch))
    spool.close()
    scheduler = _scheduler(broker, topic, Spool(directory, max_bytes=4 * 1024**3))
    started = time.perf_counter()
    scheduler.start_daemon()
    if not scheduler.wait_idle(900):
        raise RuntimeError(f"the spool did not drain within 900 s: {scheduler.stats()}")
    elapsed = time.perf_counter() - started
    stats = scheduler.stats()
    scheduler.close(30)
    if stats["replayed"] != events:
        raise RuntimeError(f"replayed {stats['replayed']} of {events}: {stats}")
    return elapsed


def run(repeats: int = 3, events: int = 200_000, drain_events: int = 1_000_000) -> KafkaResult:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = KafkaBroker(root / "broker", heap="1g", fast_start=False)
        try:
            broker.start()
            broker.create_topic("bench", partitions=3)
            _sustained(broker, "bench", 50_000)  # warm the broker's JIT
            sustained = [_sustained(broker, "bench", events) for _ in range(repeats)]
            add_event_us = _add_event_us(broker, "bench", 20_000, max(5, repeats))
            drains = [_drain(broker, "bench", root / f"spool-{i}", drain_events) for i in range(repeats)]
            encode_us = _encode_us(max(7, repeats))
            by_format = _sustained_by_format(broker, "bench", events, repeats)
        finally:
            broker.stop()
    return KafkaResult(sustained, add_event_us, drains, drain_events, encode_us, by_format)


def run_formats(repeats: int = 5, events: int = 200_000) -> KafkaResult:
    """Only the JSON/protobuf comparison (encoding and sustained), in turns."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = KafkaBroker(Path(tmp) / "broker", heap="1g", fast_start=False)
        try:
            broker.start()
            broker.create_topic("bench", partitions=3)
            _sustained(broker, "bench", 50_000)  # warm the broker's JIT
            encode_us = _encode_us(max(7, repeats))
            by_format = _sustained_by_format(broker, "bench", events, repeats)
        finally:
            broker.stop()
    return KafkaResult([], [], [], 0, encode_us, by_format)


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


if __name__ == "__main__":
    result = run_formats() if "--formats" in sys.argv else run()
    rows: list[tuple[str, list[float], str]] = []
    if result.sustained:
        rows += [
            ("sustained into kafka", result.sustained, "events/s"),
            ("add_event (kafka)", result.add_event_us, "us"),
            (f"drain {result.drain_events:,} from the spool", result.drain_seconds, "s"),
        ]
    for name in result.encode_us or {}:
        rows.append((f"encode {name}", (result.encode_us or {})[name], "us/event"))
    for name in result.sustained_by_format or {}:
        rows.append((f"sustained {name}", (result.sustained_by_format or {})[name], "events/s"))
    for name, values, unit in rows:
        median, low, high = summary(values)
        print(f"{name:32} {median:12.2f} {unit} (min {low:.2f}, max {high:.2f})")
