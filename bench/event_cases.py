"""FeatureEvent cost: the hot-path call per evaluation, and sustained events/s into the file exporter.

    .venv/bin/python -m bench.event_cases

- `add_event`: DataExporterScheduler.add_event of a prebuilt FeatureEvent, with the scheduler's
  threads running and a file exporter (JSON lines) behind it, so the batching and export
  threads compete for the GIL as they do in the server.
- `add_evaluation`: what an Evaluate call pays, EventPipeline.add_evaluation (builds the
  FeatureEvent from the engine's answer, then add_event).
- sustained: events/s from the first add_evaluation until the file exporter has written every
  event of N (one producer thread, as fast as it can, the memory buffer large enough for all N),
  with fsync on (the default) and off.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sidecar.engine.model import Evaluation, Reason
from sidecar.events import DataExporterScheduler, EventPipeline, FeatureEvent
from sidecar.events.exporters import FileExporter

EVALUATION = Evaluation("new-checkout", True, "on", Reason.TARGETING_MATCH, 7)
CONTEXT = {"email": "ana@example.com", "plan": "pro", "$userId": "user-42"}
LOG = logging.getLogger("bench.events")


@dataclass
class EventResult:
    add_event_us: list[float]
    add_evaluation_us: list[float]
    sustained_fsync: list[float]  # events/s
    sustained_no_fsync: list[float]

    @staticmethod
    def summary(values: list[float]) -> tuple[float, float, float]:
        return statistics.median(values), min(values), max(values)


def _scheduler(directory: Path, fsync: bool = True, buffer_limit: int | None = None) -> DataExporterScheduler:
    exporter = FileExporter(directory, fmt="jsonl", fsync=fsync)
    # The serve defaults: flush every 10 s or at 10,000 events.
    return DataExporterScheduler(10.0, 10_000, exporter, LOG, name="file", buffer_limit=buffer_limit)


def _hot_path_us(directory: Path, number: int, repeats: int) -> tuple[list[float], list[float]]:
    scheduler = _scheduler(directory / "hot", fsync=False)
    pipeline = EventPipeline([scheduler])
    pipeline.start()
    event = FeatureEvent.from_evaluation(EVALUATION, "user-42", CONTEXT)
    add_event = scheduler.add_event
    add_evaluation = pipeline.add_evaluation
    add_event_us: list[float] = []
    add_evaluation_us: list[float] = []
    clock = time.perf_counter
    for _ in range(repeats):
        started = clock()
        for _ in range(number):
            add_event(event)
        add_event_us.append((clock() - started) / number * 1e6)
        pipeline.flush()
        pipeline.wait_idle(120)
        started = clock()
        for _ in range(number):
            add_evaluation(EVALUATION, "user-42", CONTEXT)
        add_evaluation_us.append((clock() - started) / number * 1e6)
        pipeline.flush()
        pipeline.wait_idle(120)
    pipeline.close(30)
    return add_event_us, add_evaluation_us


def _sustained(directory: Path, events: int, fsync: bool) -> float:
    # Room in memory for all of them: what is measured is how fast they reach the file, not what
    # happens past the memory buffer when there is no spool (they are dropped and counted).
    scheduler = _scheduler(directory, fsync=fsync, buffer_limit=events)
    pipeline = EventPipeline([scheduler])
    pipeline.start()
    add = pipeline.add_evaluation
    started = time.perf_counter()
    for index in range(events):
        add(EVALUATION, f"user-{index}", CONTEXT)
    pipeline.flush()
    if not pipeline.wait_idle(300):
        raise RuntimeError("the file exporter did not catch up within 300 s")
    elapsed = time.perf_counter() - started
    stats = scheduler.stats()
    pipeline.close(30)
    if stats["exported"] != events:
        raise RuntimeError(f"exported {stats['exported']} of {events} events: {stats}")
    return events / elapsed


def run(repeats: int = 5, number: int = 20_000, events: int = 100_000) -> EventResult:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        add_event_us, add_evaluation_us = _hot_path_us(root, number, repeats)
        fsync = [_sustained(root / f"fsync-{i}", events, True) for i in range(max(3, repeats // 2))]
        no_fsync = [_sustained(root / f"nofsync-{i}", events, False) for i in range(max(3, repeats // 2))]
    return EventResult(add_event_us, add_evaluation_us, fsync, no_fsync)


if __name__ == "__main__":
    result = run()
    for name, values, unit in (
        ("add_event", result.add_event_us, "us"),
        ("add_evaluation", result.add_evaluation_us, "us"),
        ("sustained, fsync", result.sustained_fsync, "events/s"),
        ("sustained, no fsync", result.sustained_no_fsync, "events/s"),
    ):
        median, low, high = EventResult.summary(values)
        print(f"{name:22} {median:10.2f} {unit} (min {low:.2f}, max {high:.2f})")
