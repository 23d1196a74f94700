"""The spool survives its disk: full, read-only, damaged headers and payloads, a torn tail.

Each fault loses at most what it destroyed, every loss is counted, delivery resumes by itself
when the disk recovers, and no thread dies. The disk faults come from tests/events/faults.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.events import DataExporterScheduler, Event, RetryPolicy, Spool
from sidecar.events.scheduler import encode_batch
from sidecar.events.spool import HEADER, SEGMENT_SUFFIX
from tests.conftest import eventually

from .faults import FULL, READ_ONLY, DiskFaults
from .helpers import feature_events

FAST_RETRY = RetryPolicy(initial=0.01, maximum=0.05)


class Gate:
    """A bulk exporter that fails while `down` is set."""

    is_bulk = True

    def __init__(self) -> None:
        self.down = threading.Event()
        self.lock = threading.Lock()
        self.ids: list[str] = []

    def export(self, events: Sequence[Event]) -> None:
        if self.down.is_set():
            raise ConnectionError("sink down")
        with self.lock:
            self.ids.extend(e.event_id for e in events)

    def delivered(self) -> set[str]:
        with self.lock:
            return set(self.ids)


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (record := spool.peek()) is not None:
        out.append(record.payload)
        spool.ack(record)
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))


def add(scheduler: DataExporterScheduler, n: int, prefix: str) -> set[str]:
    events = feature_events(n, prefix)
    for event in events:
        assert scheduler.add_event(event)
    scheduler.flush()
    return {e.event_id for e in events}


def threads_alive(scheduler: DataExporterScheduler) -> bool:
    return scheduler._collector.is_alive() and scheduler._sender.is_alive()


def test_a_full_disk_during_delivery_loses_nothing_and_delivery_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = DiskFaults(monkeypatch, tmp_path)
    gate = Gate()
    gate.down.set()
    spool = Spool(tmp_path, fsync=True)
    scheduler = DataExporterScheduler(1.0, 10, gate, spool=spool, retry=FAST_RETRY)
    scheduler.start_daemon()
    try:
        sent = add(scheduler, 200, "a")  # the sink is down: all of it goes to the spool
        eventually(lambda: spool.pending_events == 200)

        faults.set(FULL)  # appends fail (half a record lands, and is cut off), the cursor too
        sent |= add(scheduler, 100, "b")  # kept in memory: the spool cannot take them
        eventually(lambda: faults.failures > 0 and scheduler.stats()["in_memory"] == 100)
        gate.down.clear()  # the sink is back while the disk is still full: every ack meets ENOSPC
        eventually(lambda: gate.delivered() == sent)
        assert threads_alive(scheduler)

        faults.set(None)  # space freed
        more = add(scheduler, 50, "c")
        eventually(lambda: gate.delivered() == sent | more)
        assert scheduler.dropped_by_reason == {}
        assert threads_alive(scheduler)
    finally:
        scheduler.close(5)
    assert segments(tmp_path) == []
    assert Spool(tmp_path).pending_records == 0  # the cursor caught up once the disk had room


def test_a_read_only_disk_counts_what_memory_cannot_hold_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = DiskFaults(monkeypatch, tmp_path)
    gate = Gate()
    spool = Spool(tmp_path, fsync=False)
    spool.append(encode_batch(feature_events(5, "old")), 5)  # a backlog from a previous run
    faults.set(READ_ONLY)
    gate.down.set()
    scheduler = DataExporterScheduler(1.0, 10, gate, spool=spool, buffer_limit=50, retry=FAST_RETRY)
    scheduler.start_daemon()
    try:
        sent = add(scheduler, 120, "ro")
        # Memory holds 50; the other 70 can go nowhere, and are counted as spool errors.
        eventually(lambda: scheduler.dropped_by_reason.get("spool_error") == 70)
        gate.down.clear()
        eventually(lambda: len(gate.delivered()) == 5 + 50)  # the backlog, and what memory held
        assert len(gate.delivered() & sent) == 50
        assert threads_alive(scheduler)
        faults.set(None)
        more = add(scheduler, 30, "rw")
        eventually(lambda: more <= gate.delivered())
        assert threads_alive(scheduler)
        stats = scheduler.stats()
        assert stats["exported"] + scheduler.dropped == 5 + 120 + 30  # exported counts replays too
    finally:
        scheduler.close(5)
    assert Spool(tmp_path).pending_records == 0


def test_ack_on_a_read_only_disk_keeps_the_cursor_and_redelivers_at_most_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = DiskFaults(monkeypatch, tmp_path)
    spool = Spool(tmp_path, fsync=False)
    for i in range(3):
        spool.append(f"r{i}".encode(), 1)
    faults.set(READ_ONLY)
    record = spool.peek()
    assert record is not None
    spool.ack(record)  # neither raises nor hands the record out again
    assert drain(spool) == [b"r1", b"r2"]
    assert spool.io_errors > 0
    spool.close()  # the disk is still read-only: the cursor on disk lags
    faults.set(None)
    again = Spool(tmp_path)
    # At least once: what the lagging cursor says is undelivered comes again, nothing is lost.
    assert set(drain(again)) <= {b"r0", b"r1", b"r2"}
    again.close()


def batches(n: int) -> list[tuple[bytes, int]]:
    out = []
    for i in range(n):
        events = feature_events(3 + i, f"rec{i}-")
        out.append((encode_batch(events), len(events)))
    return out


@pytest.mark.parametrize(
    "damage",
    ["magic", "length_huge", "length_short", "length_long"],
)
def test_a_damaged_header_loses_its_record_only_and_counts_it(tmp_path: Path, damage: str) -> None:
    records = batches(4)
    spool = Spool(tmp_path, fsync=False)
    offsets = [spool.append(payload, count).offset for payload, count in records]  # type: ignore[union-attr]
    spool.close()
    [segment] = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    at = offsets[1]
    magic, length, count, crc = HEADER.unpack_from(data, at)
    if damage == "magic":
        data[at] ^= 0x20
    elif damage == "length_huge":
        HEADER.pack_into(data, at, magic, 0xFFFF_FFF0, count, crc)
    elif damage == "length_short":
        HEADER.pack_into(data, at, magic, length - 7, count, crc)
    else:  # long enough to swallow the next record's header
        HEADER.pack_into(data, at, magic, length + HEADER.size + 3, count, crc)
    segment.write_bytes(bytes(data))

    again = Spool(tmp_path)
    delivered = drain(again)
    assert delivered == [records[0][0], records[2][0], records[3][0]]  # every intact record
    assert again.corrupt_events == records[1][1]  # the damaged one, counted by its events
    again.close()


def test_a_scheduler_counts_a_damaged_header_as_corrupt(tmp_path: Path) -> None:
    records = batches(3)
    spool = Spool(tmp_path, fsync=False)
    offsets = [spool.append(payload, count).offset for payload, count in records]  # type: ignore[union-attr]
    spool.close()
    [segment] = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[offsets[0] : offsets[0] + 4] = b"XXXX"
    segment.write_bytes(bytes(data))
    gate = Gate()
    scheduler = DataExporterScheduler(1.0, 10, gate, spool=Spool(tmp_path), retry=FAST_RETRY)
    scheduler.start_daemon()
    try:
        expected = {e["eventId"] for payload, _ in records[1:] for e in json.loads(payload)}
        eventually(lambda: gate.delivered() == expected)
        assert scheduler.dropped_by_reason == {"corrupt": records[0][1]}
    finally:
        scheduler.close(5)


# Any one damaged stretch (a header or payload byte, or a torn tail) loses at most the records it
# touched; every other record comes back intact and in order, and a loss is always counted.
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=8),
    where=st.floats(min_value=0.0, max_value=0.999),
    flip=st.integers(min_value=1, max_value=255),
    torn=st.booleans(),
)
def test_damage_loses_at_most_what_it_touched(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], where: float, flip: int, torn: bool
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, fsync=False)
    payloads = [bytes([65 + i]) * (size + 1) for i, size in enumerate(sizes)]  # all distinct
    spans = []
    for payload in payloads:
        record = spool.append(payload, 1)
        assert record is not None
        spans.append((record.offset, record.end))
    spool.close()
    [segment] = segments(directory)
    data = bytearray(segment.read_bytes())
    at = int(where * len(data))
    if torn:
        del data[at:]  # a crash mid-write
    else:
        data[at] ^= flip
    segment.write_bytes(bytes(data))
    touched = {i for i, (start, end) in enumerate(spans) if (at < end if torn else start <= at < end)}

    again = Spool(directory)
    delivered = drain(again)
    again.close()
    assert delivered == [p for p in payloads if p in delivered]  # in order, and each as written
    assert {p for i, p in enumerate(payloads) if i not in touched} <= set(delivered)
    lost = [i for i in touched if payloads[i] not in delivered]
    if lost and not torn:
        assert again.corrupt_events >= len(lost)
    if torn and at not in {start for start, _ in spans}:
        assert again.corrupt_bytes > 0  # the torn record's bytes are counted and logged
