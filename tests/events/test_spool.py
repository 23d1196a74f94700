from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.events import Spool, SpoolLockedError
from sidecar.events.spool import HEADER, SEGMENT_SUFFIX


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (record := spool.peek()) is not None:
        out.append(record.payload)
        spool.ack(record)
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))


def test_fifo_and_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False)
    for i in range(5):
        assert spool.append(f"batch-{i}".encode(), i + 1) is not None
    assert spool.pending_records == 5
    assert spool.pending_events == 15
    first = spool.peek()
    assert first is not None
    assert first.payload == b"batch-0"
    assert spool.peek() == first  # peek does not consume
    spool.ack(first)
    assert drain(spool) == [f"batch-{i}".encode() for i in range(1, 5)]
    assert spool.pending_events == 0
    spool.close()


def test_replay_after_reopen_resumes_at_the_cursor(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(4):
        spool.append(f"b{i}".encode(), 1)
    record = spool.peek()
    assert record is not None
    spool.ack(record)
    spool.close()  # as a crash would leave it: b1..b3 undelivered

    again = Spool(tmp_path)
    assert again.pending_records == 3
    again.append(b"b4", 1)
    assert drain(again) == [b"b1", b"b2", b"b3", b"b4"]
    again.close()
    assert Spool(tmp_path).pending_records == 0


def test_delivered_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200, fsync=False)
    for _ in range(10):
        spool.append(b"x" * 100, 1)
    assert len(segments(tmp_path)) == 10  # one record per segment at this size
    drain(spool)
    assert segments(tmp_path) == []
    assert spool.total_bytes == 0
    spool.close()


def test_torn_tail_is_truncated_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    spool.append(b"complete", 2)
    spool.close()
    [segment] = segments(tmp_path)
    with open(segment, "ab") as f:  # a crash in the middle of the next append
        f.write(HEADER.pack(b"FSP1", 1000, 5, 0) + b"partial")
    with caplog.at_level(logging.WARNING):
        again = Spool(tmp_path)
    assert "unreadable bytes" in caplog.text
    assert drain(again) == [b"complete"]
    again.close()


def test_checksum_mismatch_is_counted_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    spool.append(b"first-record", 3)
    spool.append(b"second-record", 4)
    spool.close()
    [segment] = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[HEADER.size] ^= 0xFF  # flip a payload byte of the first record
    segment.write_bytes(bytes(data))
    again = Spool(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert drain(again) == [b"second-record"]
    assert again.corrupt_events == 3
    assert "fails its checksum" in caplog.text
    again.close()


def test_quota_refuses_instead_of_filling_the_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=3 * (HEADER.size + 100), fsync=False)
    assert all(spool.append(b"x" * 100, 1) for _ in range(3))
    assert not spool.is_full
    assert spool.append(b"x" * 100, 1) is None
    assert spool.is_full
    drain(spool)
    assert not spool.is_full
    assert spool.append(b"x" * 100, 1) is not None
    spool.close()


def test_second_owner_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolLockedError):
        Spool(tmp_path)
    spool.close()
    Spool(tmp_path).close()


def test_cursor_is_replaced_atomically(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"a", 1)
    spool.append(b"b", 1)
    record = spool.peek()
    assert record is not None
    spool.ack(record)
    assert not (tmp_path / "cursor.tmp").exists()
    assert (tmp_path / "cursor").read_text().startswith("{")
    spool.close()


# A model check: any mix of appends, acks and restarts delivers exactly the appended payloads, in order.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(min_size=0, max_size=300)),
        st.tuples(st.just("ack"), st.none()),
        st.tuples(st.just("restart"), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_spool_behaves_like_a_queue_across_restarts(
    tmp_path_factory: pytest.TempPathFactory, ops: list
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, segment_bytes=512, fsync=False)
    model: deque[bytes] = deque()
    for op, arg in ops:
        if op == "append":
            assert spool.append(arg, 1) is not None
            model.append(arg)
        elif op == "ack":
            record = spool.peek()
            if model:
                assert record is not None
                assert record.payload == model.popleft()
                spool.ack(record)
            else:
                assert record is None
        else:
            spool.close()
            spool = Spool(directory, segment_bytes=512, fsync=False)
        assert spool.pending_records == len(model)
    assert drain(spool) == list(model)
    spool.close()
    assert segments(directory) == []  # everything delivered: nothing left on disk
