"""A durable FIFO of event batches on disk: one directory per exporter, append-only segments.

Layout of a spool directory:

    lock                 flock'ed while a process owns the spool (a second owner is refused)
    cursor               {"segment": N, "offset": M}: the first record not yet delivered
    00000000000000000007.seg, ...   segments, appended to and never rewritten

A record is a 16-byte header, then the payload (a JSON array of events):

    magic b"FSP1" | u32 payload length | u32 event count | u32 CRC32 of the payload   (little endian)

Appends go to the newest segment, which rolls over past `segment_bytes`; every process start opens
a fresh segment, so a segment with a torn tail is never appended to. On open, the segments from
the cursor on are scanned: a torn record at the end of a segment (a crash mid-write) is cut off
and logged; a damaged header (magic or length) is skipped by resynchronising on the next record
whose magic, length and CRC all check out, so only the damaged bytes are lost (counted, logged).
Records are read back in order with `peek` and acknowledged with `ack`, which moves the cursor
(written to a temporary file and renamed) and deletes segments once delivered. A record whose
CRC does not match is skipped, and its events are counted as dropped and logged.

The disk may fail at any time (ENOSPC, EROFS, EIO). `append` then raises OSError with the segment
still framed (a failed write is cut off, and the next append opens a new segment); `peek`, `ack`
and `close` never raise: a cursor that cannot be written is kept in memory and written again on
the next ack (until then a restart replays some delivered records, which at-least-once delivery
allows), and a delivered segment that cannot be deleted is deleted on a later ack.

The quota (`max_bytes`, the size of all segment files) makes `append` refuse a record instead
of filling the disk; the caller counts and logs that drop.

Durability: with `fsync=True` (the default) every append is fsync'ed, so a record survives power
loss once `append` returns; with False it survives a process crash (it is in the page cache) but
not a kernel crash or power loss. The cursor is never fsync'ed: if it lags after a power loss,
some delivered records are sent again, which at-least-once delivery allows.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAGIC = b"FSP1"
HEADER = struct.Struct("<4sIII")
SEGMENT_SUFFIX = ".seg"
CURSOR_FILE = "cursor"
LOCK_FILE = "lock"
MAX_RECORD_BYTES = 1 << 30


def _write_all(writer: IO[bytes], data: bytes) -> None:
    """An unbuffered file may write less than asked (a full disk mid-write raises on the next)."""
    view = memoryview(data)
    while view:
        written = writer.write(view)
        if not written:
            raise OSError(errno.EIO, "write returned 0 bytes")
        view = view[written:]


def _estimate_events(damaged: bytes) -> int:
    """How many events a damaged stretch of a segment held: every event's JSON has one eventId."""
    return damaged.count(b'"eventId":')


def _complete(tail: bytes) -> bool:
    """Whether the bytes left in a segment are one whole record whose magic or length is damaged
    (the other field, or the payload's CRC, says it ends here), rather than a write cut short."""
    if len(tail) < HEADER.size:
        return False
    _magic, length, _count, crc = HEADER.unpack_from(tail)
    return length == len(tail) - HEADER.size or zlib.crc32(tail[HEADER.size :]) == crc


class SpoolLockedError(RuntimeError):
    """Another process owns this spool directory."""


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """Where one record lives, and what it holds once read."""

    segment: int
    offset: int
    length: int  # payload bytes
    count: int  # events
    payload: bytes = b""

    @property
    def end(self) -> int:
        return self.offset + HEADER.size + self.length


def _segment_name(segment: int) -> str:
    return f"{segment:020d}{SEGMENT_SUFFIX}"


class Spool:
    """A FIFO of records on disk. Thread-safe: one lock guards all state (never held by callers)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 256 * 1024 * 1024,
        segment_bytes: int = 8 * 1024 * 1024,
        fsync: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.log = logger or logging.getLogger("sidecar.events.spool")
        self._lock = threading.Lock()
        self._pending: deque[SpoolRecord] = deque()
        self._segment_sizes: dict[int, int] = {}
        self._active: int | None = None
        self._writer: IO[bytes] | None = None
        self._reader: tuple[int, IO[bytes]] | None = None
        self._closed = False
        self._full = False
        self.pending_events = 0
        # Events lost to corruption found on disk (counted, logged).
        self.corrupt_events = 0
        self.corrupt_bytes = 0
        self.corrupt_records = 0  # damaged records or regions skipped
        # Disk errors met by peek/ack (appends raise theirs to the caller, who counts them).
        self.io_errors = 0
        self._cursor_dirty: tuple[int, int] | None = None  # a cursor still to be written
        self._last_io_log = float("-inf")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_handle = self._take_lock()
        try:
            self._recover()
        except BaseException:
            self._lock_handle.close()
            raise

    # ---- state -------------------------------------------------------------------------------

    @property
    def pending_records(self) -> int:
        return len(self._pending)

    @property
    def total_bytes(self) -> int:
        return sum(self._segment_sizes.values())

    @property
    def is_full(self) -> bool:
        """True after an append was refused for the quota, until space is freed."""
        return self._full

    @property
    def closed(self) -> bool:
        return self._closed

    # ---- open / recover ----------------------------------------------------------------------

    def _take_lock(self) -> IO[bytes]:
        handle = open(self.directory / LOCK_FILE, "a+b")  # noqa: SIM115 - held for the spool's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise SpoolLockedError(f"spool {self.directory} is in use by another process") from exc
        return handle

    def _read_cursor(self) -> tuple[int, int]:
        try:
            data = json.loads((self.directory / CURSOR_FILE).read_text())
            return int(data["segment"]), int(data["offset"])
        except FileNotFoundError:
            return 0, 0
        except (ValueError, KeyError, TypeError) as exc:
            # Written atomically, so this means outside damage: replay everything still on disk.
            self.log.warning("spool %s: unreadable cursor (%s); replaying every segment", self.directory, exc)
            return 0, 0

    def _recover(self) -> None:
        segments = sorted(int(p.stem) for p in self.directory.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit())
        cursor_segment, cursor_offset = self._read_cursor()
        for segment in segments:
            path = self.directory / _segment_name(segment)
            if segment < cursor_segment:
                try:
                    path.unlink(missing_ok=True)  # fully delivered before the last stop
                except OSError as exc:  # a read-only disk: delivered, so just skipped
                    self.log.warning("spool %s: cannot delete %s: %s", self.directory, path.name, exc)
                continue
            start = cursor_offset if segment == cursor_segment else 0
            self._scan_segment(segment, path, start)
        if self._pending:
            self.log.info(
                "spool %s: %d events in %d batches to replay",
                self.directory,
                self.pending_events,
                len(self._pending),
            )
        # Never reuse an id at or below the cursor's: a new segment there would count as delivered.
        self._next_segment = max(segments[-1] + 1 if segments else 0, cursor_segment + 1)

    def _scan_segment(self, segment: int, path: Path, start: int) -> None:
        with open(path, "rb") as f:
            data = f.read()
        size = len(data)
        offset = start if start <= size else size
        while offset < size:
            record = self._frame(data, offset, segment, verify=False)
            resync = None
            if record is not None and not self._intact(data, record):
                # A bad checksum: a damaged payload (peek skips the record and counts its events)
                # unless an intact record starts inside its extent, or none follows it: then the
                # length is what is damaged, and only a resync finds the records after it.
                resync = self._resync(data, offset, segment)
                follows = record.end == size or data[record.end : record.end + len(MAGIC)] == MAGIC
                if (resync is not None and resync < record.end) or not follows:
                    record = None
            if record is not None:
                self._pending.append(record)
                self.pending_events += record.count
                offset = record.end
                continue
            # Damage, or a torn tail: skip to the next record that checks out in full (CRC too,
            # so that payload bytes which happen to read "FSP1" are not taken for a header).
            if resync is None:
                resync = self._resync(data, offset, segment)
            skipped = (resync if resync is not None else size) - offset
            lost = _estimate_events(data[offset : offset + skipped])
            self.corrupt_bytes += skipped
            self.corrupt_records += 1
            if resync is None:
                if _complete(data[offset:]):
                    lost = max(1, lost)  # a whole record with a damaged header, not a torn one
                self.corrupt_events += lost
                self.log.warning(
                    "spool %s: segment %s has %d unreadable bytes at offset %d (a write cut short by a "
                    "crash, or damage; about %d events); truncating them",
                    self.directory,
                    path.name,
                    skipped,
                    offset,
                    lost,
                )
                try:
                    with open(path, "r+b") as f:
                        f.truncate(offset)
                    size = offset
                except OSError as exc:  # read-only disk: the bytes stay, and are skipped again
                    self.log.warning("spool %s: cannot truncate %s: %s", self.directory, path.name, exc)
                break
            lost = max(1, lost)
            self.corrupt_events += lost
            self.log.error(
                "spool %s: segment %s has a damaged record header at offset %d; skipped %d bytes "
                "(about %d events lost) to the next intact record at offset %d",
                self.directory,
                path.name,
                offset,
                skipped,
                lost,
                resync,
            )
            offset = resync
        self._segment_sizes[segment] = size

    @staticmethod
    def _frame(data: bytes, offset: int, segment: int, verify: bool) -> SpoolRecord | None:
        """The record whose header is at `offset` in `data`, if its framing (and, with `verify`,
        its CRC) holds."""
        if offset + HEADER.size > len(data):
            return None
        magic, length, count, crc = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + length
        if magic != MAGIC or length > MAX_RECORD_BYTES or end > len(data):
            return None
        if verify and zlib.crc32(data[offset + HEADER.size : end]) != crc:
            return None
        return SpoolRecord(segment, offset, length, count)

    @staticmethod
    def _intact(data: bytes, record: SpoolRecord) -> bool:
        start = record.offset + HEADER.size
        crc = HEADER.unpack_from(data, record.offset)[3]
        return zlib.crc32(data[start : start + record.length]) == crc

    def _resync(self, data: bytes, offset: int, segment: int) -> int | None:
        """The offset of the next intact record after `offset`, or None."""
        at = data.find(MAGIC, offset + 1)
        while at != -1:
            if self._frame(data, at, segment, verify=True) is not None:
                return at
            at = data.find(MAGIC, at + 1)
        return None

    # ---- append ------------------------------------------------------------------------------

    def append(self, payload: bytes, count: int) -> SpoolRecord | None:
        """Write one record; None (and nothing written) when it would exceed the quota or the
        spool is closed. OSError propagates (disk full, I/O error)."""
        record_bytes = HEADER.size + len(payload)
        header = HEADER.pack(MAGIC, len(payload), count, zlib.crc32(payload))
        with self._lock:
            if self._closed:
                return None
            if self._cursor_dirty is not None:
                self._save_cursor(self._cursor_dirty)
            if self.total_bytes + record_bytes > self.max_bytes:
                self._full = True
                return None
            writer = self._writer_for(record_bytes)
            segment = self._active
            assert segment is not None
            offset = self._segment_sizes[segment]
            try:
                _write_all(writer, header + payload)
                if self.fsync:
                    os.fsync(writer.fileno())
            except OSError:
                # Cut any partial write so the segment stays framed, then report the failure. If
                # even that fails, the resync on the next start skips the partial record; either
                # way no later record is appended behind it: the next append opens a new segment.
                with contextlib.suppress(OSError):
                    writer.truncate(offset)
                self._retire_writer()
                raise
            self._segment_sizes[segment] = offset + record_bytes
            record = SpoolRecord(segment, offset, len(payload), count)
            self._pending.append(record)
            self.pending_events += count
            return record

    def _writer_for(self, record_bytes: int) -> IO[bytes]:
        if self._writer is not None and self._active is not None:
            if self._segment_sizes[self._active] == 0 or (
                self._segment_sizes[self._active] + record_bytes <= self.segment_bytes
            ):
                return self._writer
            self._writer.close()
            self._writer = None
        segment = self._next_segment
        self._next_segment += 1
        path = self.directory / _segment_name(segment)
        # Unbuffered: after a failed write no stale bytes wait in a buffer to land behind a cut.
        self._writer = open(path, "ab", buffering=0)  # noqa: SIM115 - kept open until the segment rolls over
        self._active = segment
        self._segment_sizes[segment] = 0
        if self.fsync:
            self._fsync_directory()
        return self._writer

    def _retire_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
            self._writer = None
        self._active = None

    # ---- read / ack --------------------------------------------------------------------------

    def peek(self) -> SpoolRecord | None:
        """The oldest undelivered record with its payload, or None. Corrupt records are skipped
        (counted in corrupt_events, logged)."""
        with self._lock:
            while self._pending and not self._closed:
                head = self._pending[0]
                try:
                    data = self._read(head)
                except OSError as exc:
                    if self._reader is not None:
                        with contextlib.suppress(OSError):
                            self._reader[1].close()
                        self._reader = None
                    self._io_error(f"cannot read segment {head.segment}", exc)
                    return None
                if data is not None:
                    return SpoolRecord(head.segment, head.offset, head.length, head.count, data)
                self.corrupt_events += head.count
                self.log.error(
                    "spool %s: record at segment %d offset %d fails its checksum; %d events lost",
                    self.directory,
                    head.segment,
                    head.offset,
                    head.count,
                )
                self._advance()
            return None

    def _read(self, record: SpoolRecord) -> bytes | None:
        if self._reader is None or self._reader[0] != record.segment:
            if self._reader is not None:
                self._reader[1].close()
            self._reader = (record.segment, open(self.directory / _segment_name(record.segment), "rb"))  # noqa: SIM115
        f = self._reader[1]
        f.seek(record.offset)
        header = f.read(HEADER.size)
        if len(header) < HEADER.size:
            return None
        magic, length, count, crc = HEADER.unpack(header)
        if magic != MAGIC or length != record.length or count != record.count:
            return None
        payload = f.read(length)
        if len(payload) != length or zlib.crc32(payload) != crc:
            return None
        return payload

    def ack(self, record: SpoolRecord) -> None:
        """Mark the head record delivered. Acks of anything but the head are ignored."""
        with self._lock:
            if self._closed or not self._pending:
                return
            head = self._pending[0]
            if (head.segment, head.offset) != (record.segment, record.offset):
                return
            self._advance()

    def _advance(self) -> None:
        """Drop the head record, persist the cursor, delete fully delivered segments. Never raises:
        the record was delivered (or is lost and counted), so it leaves the queue in memory even
        when the disk refuses the new cursor; that cursor is written again on the next ack."""
        head = self._pending.popleft()
        self.pending_events -= head.count
        if self._pending:
            nxt = self._pending[0]
            cursor = (nxt.segment, nxt.offset)
        else:
            cursor = (head.segment, head.end)
        if not self._pending:
            # Everything delivered: the next append starts a fresh segment, every one on disk goes.
            self._retire_writer()
            cursor = (self._next_segment, 0)
        self._save_cursor(cursor)
        for segment in sorted(self._segment_sizes):
            if segment >= cursor[0]:
                break
            self._delete_segment(segment)

    def _save_cursor(self, cursor: tuple[int, int]) -> None:
        try:
            self._write_cursor(*cursor)
        except OSError as exc:
            self._cursor_dirty = cursor
            self._io_error("cannot write the cursor (a restart would replay delivered records)", exc)
        else:
            self._cursor_dirty = None

    def _io_error(self, what: str, exc: OSError) -> None:
        self.io_errors += 1
        now = time.monotonic()
        if now - self._last_io_log >= 10.0:
            self._last_io_log = now
            self.log.error("spool %s: %s: %s", self.directory, what, exc)

    def _delete_segment(self, segment: int) -> None:
        if self._reader is not None and self._reader[0] == segment:
            self._reader[1].close()
            self._reader = None
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / _segment_name(segment))
        except OSError as exc:
            # Delivered already: kept in the sizes so that a later ack tries again.
            self._io_error(f"cannot delete delivered segment {segment}", exc)
            return
        self._segment_sizes.pop(segment, None)
        self._full = False

    def _write_cursor(self, segment: int, offset: int) -> None:
        # Not fsync'ed, even with fsync=True: a cursor that lags after a power loss only means
        # some delivered batches are sent again, which at-least-once delivery allows.
        tmp = self.directory / (CURSOR_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps({"segment": segment, "offset": offset}))
        os.replace(tmp, self.directory / CURSOR_FILE)

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # ---- close -------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._cursor_dirty is not None:
                self._save_cursor(self._cursor_dirty)
            with contextlib.suppress(OSError):
                if self._writer is not None:
                    self._writer.close()
            self._writer = None
            with contextlib.suppress(OSError):
                if self._reader is not None:
                    self._reader[1].close()
            self._reader = None
            with contextlib.suppress(OSError):
                self._lock_handle.close()
