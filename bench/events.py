"""Event pipeline benchmark: the hot-path cost of one evaluation event, and throughput to a file.

    .venv/bin/python -m bench.events [--events 200000] [--rate 50000] [--format jsonl]

1. add_evaluation: FeatureEvent creation + one put per exporter, timed over a loop with the
   workers running (so it includes their competition for the GIL), for 0, 1 and 3 exporters.
2. Drain rate: --events events as fast as one thread can add them, buffers large enough to hold
   them all; events/s from the first add until the file exporter has written the last one.
3. Sustained: a producer paced at --rate events/s for 4 s with the default buffers (what
   `serve` uses), to the file exporter and to a failing exporter whose batches all go to the
   spool (fsync on): drops must be 0 and the backlog must clear right after the producer stops.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from sidecar.engine.model import Evaluation, Reason
from sidecar.events import (
    DataExporterScheduler,
    EventPipeline,
    PipelineConfig,
    RetryPolicy,
    Spool,
    build_pipeline,
)
from sidecar.events.exporters import FileExporter

EVALUATION = Evaluation("new-checkout", True, "on", Reason.TARGETING_MATCH, 7)
CONTEXT = {"email": "ada@example.com", "plan": "pro", "$userId": "ada"}


def hot_path(directory: Path, exporters: int, n: int) -> float:
    specs = [f"file:dir={directory}/hot{i},fsync=false" for i in range(exporters)]
    pipeline = build_pipeline(PipelineConfig(exporters=specs, max_events_in_memory=10_000))
    pipeline.start()
    add = pipeline.add_evaluation
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            add(EVALUATION, "ada", CONTEXT)
        best = min(best, (time.perf_counter() - started) / n)
        pipeline.wait_idle(60)
    pipeline.close(30)
    return best * 1e6


def drain_rate(directory: Path, n: int, fmt: str) -> float:
    exporter = FileExporter(directory / f"drain-{fmt}", fmt)
    scheduler = DataExporterScheduler(60, 10_000, exporter, buffer_limit=n, intake_limit=n)
    pipeline = EventPipeline([scheduler])
    pipeline.start()
    started = time.perf_counter()
    for i in range(n):
        pipeline.add_evaluation(EVALUATION, f"user-{i}", CONTEXT)
    pipeline.flush()
    assert pipeline.wait_idle(300)
    elapsed = time.perf_counter() - started
    pipeline.close(30)
    assert scheduler.exported == n, scheduler.stats()
    return n / elapsed


def paced(pipeline: EventPipeline, rate: float, seconds: float) -> int:
    n = int(rate * seconds)
    started = time.perf_counter()
    for i in range(n):
        pipeline.add_evaluation(EVALUATION, f"user-{i}", CONTEXT)
        if i % 500 == 0:
            ahead = i / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
    return n


class Failing:
    is_bulk = True

    def export(self, events: object) -> None:
        raise RuntimeError("down")


def sustained_file(directory: Path, rate: float) -> tuple[int, int, float]:
    pipeline = build_pipeline(PipelineConfig(exporters=[f"file:dir={directory}/sustained"]))
    pipeline.start()
    n = paced(pipeline, rate, 4.0)
    stopped = time.perf_counter()
    pipeline.flush()
    assert pipeline.wait_idle(120)
    lag = time.perf_counter() - stopped
    stats = pipeline.stats()["file"]
    pipeline.close(30)
    return n, stats["dropped"], lag


def sustained_spill(directory: Path, rate: float) -> tuple[int, int, float]:
    spool = Spool(directory / "spool", fsync=True)
    scheduler = DataExporterScheduler(10, 10_000, Failing(), spool=spool, retry=RetryPolicy(5, 5))
    pipeline = EventPipeline([scheduler])
    pipeline.start()
    pipeline.add_evaluation(EVALUATION, "first", CONTEXT)
    pipeline.flush()
    while not scheduler.stats()["failing"]:
        time.sleep(0.01)
    n = paced(pipeline, rate, 4.0)
    stopped = time.perf_counter()
    pipeline.flush()
    while spool.pending_events + scheduler.dropped < n + 1:
        time.sleep(0.005)
    lag = time.perf_counter() - stopped
    dropped = scheduler.dropped
    pipeline.close(0.5)
    return n, dropped, lag


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=50_000)
    parser.add_argument("--format", default="jsonl", choices=("jsonl", "csv", "parquet"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for exporters in (0, 1, 3):
            us = hot_path(directory, exporters, 50_000)
            print(f"add_evaluation, {exporters} exporter(s): {us:.2f} us per call")
        rate = drain_rate(directory, args.events, args.format)
        print(f"drain to file ({args.format}): {rate:,.0f} events/s ({args.events} events)")
        n, dropped, lag = sustained_file(directory, args.rate)
        print(f"sustained {args.rate:,.0f}/s to file (jsonl): {n} events, {dropped} dropped, ", end="")
        print(f"idle {lag:.2f}s after")
        n, dropped, lag = sustained_spill(directory, args.rate)
        print(f"sustained {args.rate:,.0f}/s to spool (fsync): {n} events, {dropped} dropped, ", end="")
        print(f"spooled {lag:.2f}s after")


if __name__ == "__main__":
    main()
