"""DataExporterScheduler: batching as the seed describes, retries, spool, dead letters, shutdown."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.events import (
    DataExporterScheduler,
    PermanentExportError,
    RetryableExportError,
    RetryPolicy,
    Spool,
)
from sidecar.events.spool import SpoolRecord
from tests.conftest import eventually

from .helpers import RecordingExporter, StuckExporter, feature_events

FAST = RetryPolicy(initial=0.01, maximum=0.05)


@pytest.fixture
def schedulers() -> Iterator[list[DataExporterScheduler]]:
    made: list[DataExporterScheduler] = []
    yield made
    for s in made:
        s.close(timeout=0.2)


def make(
    made: list[DataExporterScheduler],
    exporter: object,
    flush_interval: float = 60.0,
    max_events: int = 100,
    **kwargs: object,
) -> DataExporterScheduler:
    scheduler = DataExporterScheduler(
        flush_interval, max_events, exporter, logging.getLogger("test.events"), retry=FAST, **kwargs
    )
    made.append(scheduler)
    return scheduler


def test_non_bulk_exporter_gets_events_as_they_come(schedulers: list) -> None:
    exporter = RecordingExporter(is_bulk=False)
    scheduler = make(schedulers, exporter, flush_interval=3600, max_events=1000)
    scheduler.start_daemon()
    events = feature_events(3)
    for event in events:
        scheduler.add_event(event)
        eventually(lambda e=event: e in exporter.events)  # no flush interval, no batch size needed
    assert exporter.ids == [e.event_id for e in events]


def test_bulk_exporter_gets_a_batch_at_max_events_in_memory(schedulers: list) -> None:
    exporter = RecordingExporter()
    scheduler = make(schedulers, exporter, flush_interval=3600, max_events=10)
    scheduler.start_daemon()
    events = feature_events(25)
    for event in events:
        scheduler.add_event(event)
    eventually(lambda: len(exporter.batches) == 2)
    assert [len(b) for b in exporter.batches] == [10, 10]
    scheduler.close(timeout=2)
    assert [len(b) for b in exporter.batches] == [10, 10, 5]  # the rest on close
    assert exporter.ids == [e.event_id for e in events]


def test_bulk_exporter_gets_a_batch_every_flush_interval(schedulers: list) -> None:
    exporter = RecordingExporter()
    scheduler = make(schedulers, exporter, flush_interval=0.05, max_events=1000)
    scheduler.start_daemon()
    scheduler.add_event(feature_events(1)[0])
    eventually(lambda: len(exporter.batches) == 1)
    scheduler.add_event(feature_events(1)[0])
    eventually(lambda: len(exporter.batches) == 2)


def test_events_added_before_start_are_delivered(schedulers: list) -> None:
    exporter = RecordingExporter()
    scheduler = make(schedulers, exporter)
    events = feature_events(5)
    for event in events:
        scheduler.add_event(event)
    scheduler.close(timeout=2)  # starts, flushes, stops
    assert exporter.ids == [e.event_id for e in events]


def test_failed_exports_are_retried_until_they_succeed(schedulers: list) -> None:
    exporter = RecordingExporter(fail=4)
    scheduler = make(schedulers, exporter, flush_interval=0.01)
    scheduler.start_daemon()
    events = feature_events(30)
    for event in events:
        scheduler.add_event(event)
    eventually(lambda: sorted(exporter.ids) == sorted(e.event_id for e in events))
    stats = scheduler.stats()
    assert stats["retried"] == 4
    assert stats["exported"] == 30
    assert stats["dropped"] == 0


def test_retry_after_is_honoured(schedulers: list) -> None:
    exporter = RecordingExporter(fail=1, error=RetryableExportError("slow down", retry_after=0.3))
    scheduler = make(schedulers, exporter, flush_interval=0.01)
    scheduler.start_daemon()
    started = time.monotonic()
    scheduler.add_event(feature_events(1)[0])
    eventually(lambda: exporter.batches)
    assert time.monotonic() - started >= 0.3


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    import random

    policy = RetryPolicy(initial=1.0, maximum=8.0)
    rng = random.Random(1)
    caps = [max(policy.delay(attempt, rng) for _ in range(500)) for attempt in range(1, 7)]
    assert caps[0] <= 1.0 < caps[1] <= 2.0 < caps[2] <= 4.0 < caps[3] <= 8.0
    assert max(caps[4:]) <= 8.0
    assert min(policy.delay(3, rng) for _ in range(500)) < 0.1  # full jitter reaches down to 0
    assert policy.delay(1, rng, retry_after=5.0) >= 5.0
    assert policy.delay(100_000, rng) <= 8.0  # a days-long outage does not overflow the exponent


def test_failed_batch_is_spooled_before_it_is_retried(tmp_path: Path, schedulers: list) -> None:
    exporter = RecordingExporter(fail=10**9)
    spool = Spool(tmp_path / "spool", fsync=False)
    scheduler = make(schedulers, exporter, flush_interval=0.01, spool=spool)
    scheduler.start_daemon()
    events = feature_events(7)
    for event in events:
        scheduler.add_event(event)
    eventually(lambda: exporter.calls >= 2)  # the retry comes from the spool
    assert spool.pending_events == 7
    assert scheduler.stats()["spooled"] == 7
    exporter.fail = 0
    eventually(lambda: sorted(exporter.ids) == sorted(e.event_id for e in events))
    eventually(lambda: spool.pending_records == 0)


def test_while_failing_new_batches_go_straight_to_the_spool(tmp_path: Path, schedulers: list) -> None:
    exporter = RecordingExporter(fail=10**9)
    spool = Spool(tmp_path / "spool", fsync=False)
    scheduler = make(schedulers, exporter, flush_interval=0.01, spool=spool)
    scheduler.start_daemon()
    scheduler.add_event(feature_events(1)[0])
    eventually(lambda: scheduler.stats()["failing"])
    for event in feature_events(50):
        scheduler.add_event(event)
    eventually(lambda: spool.pending_events == 51)
    assert scheduler.stats()["in_memory"] == 0


def test_memory_buffer_spills_to_the_spool(tmp_path: Path, schedulers: list) -> None:
    exporter = StuckExporter()
    spool = Spool(tmp_path / "spool", fsync=False)
    scheduler = make(schedulers, exporter, max_events=10, buffer_limit=30, spool=spool)
    scheduler.start_daemon()
    events = feature_events(200)
    for event in events:
        assert scheduler.add_event(event)
    eventually(lambda: scheduler.stats()["spooled"] >= 150)
    stats = scheduler.stats()
    assert stats["dropped"] == 0
    assert stats["in_memory"] <= 30 + 10
    exporter.release.set()
    eventually(lambda: len([e for b in exporter.batches for e in b]) == 200)


def test_without_a_spool_overflow_is_dropped_counted_and_logged(
    schedulers: list, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = StuckExporter()
    scheduler = make(schedulers, exporter, max_events=10, buffer_limit=30)
    scheduler.start_daemon()
    with caplog.at_level(logging.WARNING):
        for event in feature_events(500):
            scheduler.add_event(event)
        eventually(lambda: scheduler.stats()["in_memory"] <= 40)
    dropped = scheduler.dropped_by_reason
    assert sum(dropped.values()) >= 500 - 40
    assert set(dropped) <= {"buffer_full", "intake_full"}
    assert "dropped" in caplog.text or "refused" in caplog.text
    exporter.release.set()


def test_spool_quota_full_drops_are_counted_and_logged(
    tmp_path: Path, schedulers: list, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = RecordingExporter(fail=10**9)
    spool = Spool(tmp_path / "spool", max_bytes=4096, fsync=False)
    scheduler = make(schedulers, exporter, flush_interval=0.01, max_events=10, buffer_limit=20, spool=spool)
    scheduler.start_daemon()
    with caplog.at_level(logging.WARNING):
        for event in feature_events(300):
            scheduler.add_event(event)
        eventually(lambda: scheduler.dropped_by_reason.get("spool_full", 0) > 0)
    assert "spool_full" in caplog.text
    stats = scheduler.stats()
    # Nothing vanishes: every event is exported, in memory, in the spool or counted as dropped.
    eventually(
        lambda: scheduler.stats()["spool_pending"] + scheduler.stats()["in_memory"] + scheduler.dropped == 300
    )
    assert stats["exported"] == 0
    assert scheduler.saturated


def test_permanent_errors_go_to_the_dead_letter_file(tmp_path: Path, schedulers: list) -> None:
    exporter = RecordingExporter(fail=1, error=PermanentExportError("HTTP 400: bad event"))
    dead = tmp_path / "dead-letter.jsonl"
    scheduler = make(schedulers, exporter, flush_interval=0.01, dead_letter_path=dead)
    scheduler.start_daemon()
    events = feature_events(3)
    for event in events:
        scheduler.add_event(event)
    eventually(lambda: scheduler.stats()["dead_lettered"] == 3)
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [line["event"]["eventId"] for line in lines] == [e.event_id for e in events]
    assert all(line["reason"] == "HTTP 400: bad event" for line in lines)
    scheduler.add_event(feature_events(1)[0])  # the exporter works again
    eventually(lambda: scheduler.stats()["exported"] == 1)
    assert exporter.calls == 2  # never retried


def test_add_event_never_blocks_on_a_stuck_exporter(schedulers: list) -> None:
    exporter = StuckExporter()
    scheduler = make(schedulers, exporter, flush_interval=0.01, max_events=10, buffer_limit=100)
    scheduler.start_daemon()
    scheduler.add_event(feature_events(1)[0])
    assert exporter.entered.wait(2)
    done = threading.Event()

    def produce() -> None:
        for event in feature_events(5000):
            scheduler.add_event(event)
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert done.wait(10), "add_event blocked behind a stuck export"
    # Read while the collector takes events (its count and the queue's are two reads): it settles.
    eventually(
        lambda: scheduler.stats()["enqueued"] + scheduler.dropped_by_reason.get("intake_full", 0) == 5001
    )
    exporter.release.set()


def test_close_spools_what_a_stuck_exporter_holds(tmp_path: Path) -> None:
    exporter = StuckExporter()
    spool = Spool(tmp_path / "spool", fsync=False)
    scheduler = DataExporterScheduler(0.01, 10, exporter, spool=spool, retry=FAST)
    scheduler.start_daemon()
    events = feature_events(35)
    for event in events:
        scheduler.add_event(event)
    assert exporter.entered.wait(2)
    started = time.monotonic()
    scheduler.close(timeout=0.3)
    assert time.monotonic() - started < 3  # the grace period bounds shutdown
    assert scheduler.dropped == 0
    exporter.release.set()

    # The next start replays all of it: the in-flight batch too (at least once).
    replay = RecordingExporter()
    again = DataExporterScheduler(0.01, 10, replay, spool=Spool(tmp_path / "spool", fsync=False), retry=FAST)
    again.start_daemon()
    eventually(lambda: set(replay.ids) == {e.event_id for e in events})
    again.close(timeout=1)
    assert again.stats()["replayed"] == 35


def test_close_without_a_spool_counts_what_it_could_not_deliver(caplog: pytest.LogCaptureFixture) -> None:
    exporter = RecordingExporter(fail=10**9)
    scheduler = DataExporterScheduler(0.01, 10, exporter, retry=FAST)
    scheduler.start_daemon()
    for event in feature_events(25):
        scheduler.add_event(event)
    with caplog.at_level(logging.WARNING):
        scheduler.close(timeout=0.2)
    assert scheduler.dropped_by_reason == {"shutdown_no_spool": 25}
    assert "shutdown_no_spool" in caplog.text
    assert not scheduler.add_event(feature_events(1)[0])
    assert scheduler.dropped_by_reason["closed"] == 1


def test_close_with_nothing_sent_does_not_claim_a_batch_was_spooled(caplog: pytest.LogCaptureFixture) -> None:
    """A failed start closes at once (close(0)): an idle sender holds no batch, nothing was spooled."""
    exporter = RecordingExporter()
    scheduler = DataExporterScheduler(0.01, 10, exporter, retry=FAST)
    scheduler.start_daemon()
    [event] = feature_events(1)
    scheduler.add_event(event)
    eventually(lambda: exporter.ids == [event.event_id])  # the sender is idle again, holding nothing
    with caplog.at_level(logging.INFO):
        scheduler.close(timeout=0)
    assert "export still running" not in caplog.text
    assert "exported=1 spooled=0" in caplog.text


def test_close_without_a_spool_says_the_hanging_batch_was_dropped(caplog: pytest.LogCaptureFixture) -> None:
    exporter = StuckExporter()
    scheduler = DataExporterScheduler(0.01, 10, exporter, retry=FAST)
    scheduler.start_daemon()
    for event in feature_events(10):
        scheduler.add_event(event)
    assert exporter.entered.wait(2)
    with caplog.at_level(logging.WARNING):
        scheduler.close(timeout=0.2)
    exporter.release.set()
    [line] = [r.getMessage() for r in caplog.records if "export still running" in r.getMessage()]
    assert "batch of 10 events was dropped (shutdown_no_spool, counted)" in line
    assert "spooled" not in line
    assert scheduler.dropped_by_reason == {"shutdown_no_spool": 10}


def test_close_with_a_spool_says_the_hanging_batch_was_spooled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = StuckExporter()
    scheduler = DataExporterScheduler(
        0.01, 10, exporter, spool=Spool(tmp_path / "spool", fsync=False), retry=FAST
    )
    scheduler.start_daemon()
    for event in feature_events(10):
        scheduler.add_event(event)
    assert exporter.entered.wait(2)
    with caplog.at_level(logging.WARNING):
        scheduler.close(timeout=0.3)
    exporter.release.set()
    assert "its batch of 10 events was spooled and will be sent again after a restart" in caplog.text


def test_close_retries_a_failing_exporter_once_more(schedulers: list) -> None:
    exporter = RecordingExporter(fail=1)
    scheduler = DataExporterScheduler(
        3600, 100, exporter, retry=RetryPolicy(initial=60, maximum=60)
    )  # a long backoff: close must not wait it out
    scheduler.start_daemon()
    events = feature_events(3)
    for event in events:
        scheduler.add_event(event)
    scheduler.flush()
    eventually(lambda: exporter.calls == 1)
    scheduler.close(timeout=2)
    assert exporter.ids == [e.event_id for e in events]
    assert scheduler.dropped == 0


def test_spooled_events_from_a_previous_run_are_replayed_first(tmp_path: Path) -> None:
    old = feature_events(5, prefix="old")
    first = DataExporterScheduler(0.01, 10, RecordingExporter(fail=10**9), spool=Spool(tmp_path), retry=FAST)
    first.start_daemon()
    for event in old:
        first.add_event(event)
    first.close(timeout=0.1)

    exporter = RecordingExporter()
    second = DataExporterScheduler(0.01, 10, exporter, spool=Spool(tmp_path), retry=FAST)
    new = feature_events(5, prefix="new")
    for event in new:
        second.add_event(event)
    second.start_daemon()
    eventually(lambda: len(exporter.ids) == 10)
    assert exporter.ids[:5] == [e.event_id for e in old]
    assert sorted(exporter.ids[5:]) == sorted(e.event_id for e in new)
    second.close(timeout=1)


class SlowFirstAppendSpool(Spool):
    """A spool whose first write outlasts close()'s deadline, as an fsync on a busy disk can."""

    slow = True

    def append(self, payload: bytes, count: int) -> SpoolRecord | None:
        record = super().append(payload, count)
        if self.slow:
            self.slow = False
            time.sleep(0.3)  # written, not yet returned: the fsync
        return record


def test_a_batch_being_spooled_when_close_gives_up_is_spooled_once(tmp_path: Path) -> None:
    # The export thread moves a failed batch to the spool while close() gives up on it: one of
    # the two must write it, not both (a fresh clone saw every old event replayed twice).
    events = feature_events(5, prefix="old")
    first = DataExporterScheduler(
        60, 10, RecordingExporter(fail=10**9), spool=SlowFirstAppendSpool(tmp_path), retry=FAST
    )
    first.start_daemon()
    for event in events:
        first.add_event(event)
    first.flush()  # one batch, in memory: its first write to the spool is the export thread's
    eventually(lambda: first.retried >= 1)  # the first export failed: its batch goes to the spool
    first.close(timeout=0.1)
    assert first.stats()["spool_pending"] == 5

    exporter = RecordingExporter()
    second = DataExporterScheduler(0.01, 10, exporter, spool=Spool(tmp_path), retry=FAST)
    second.start_daemon()
    eventually(lambda: exporter.count >= 5)
    second.close(timeout=1)
    assert exporter.ids == [e.event_id for e in events]


class CountingIntake(queue.SimpleQueue):
    """The intake queue, counting the collector's blocking gets (each one a thread wake-up)."""

    gets = 0

    def get(self, block: bool = True, timeout: float | None = None):
        CountingIntake.gets += 1
        return super().get(block, timeout)


def test_a_bulk_collector_is_not_woken_by_every_event():
    # Events arriving one at a time, as RPCs make them: a collector blocked in get() for each
    # one costs every RPC a thread switch; a bulk exporter lets them gather between wake-ups.
    exporter = RecordingExporter(is_bulk=True)
    scheduler = DataExporterScheduler(0.05, 10_000, exporter)
    scheduler._intake = CountingIntake()
    scheduler._put = scheduler._intake.put_nowait
    scheduler._qsize = scheduler._intake.qsize
    CountingIntake.gets = 0
    scheduler.start_daemon()
    events = feature_events(400)
    try:
        for event in events:
            scheduler.add_event(event)
            time.sleep(0.0002)
        eventually(lambda: exporter.count == len(events))
    finally:
        scheduler.close(5)
    assert exporter.ids == [e.event_id for e in events]
    assert CountingIntake.gets < len(events) / 2
