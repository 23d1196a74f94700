"""DataExporterScheduler: the seed's scheduler, rebuilt so that it neither blocks nor loses events.

One scheduler drives one exporter with two threads of its own:

    add_event ──put_nowait──▶ intake (SimpleQueue) ──▶ collector thread ──▶ memory batches ──▶ export thread
                                                              │   (past the buffer limit, or      ▲
                                                              ╰── while exports fail) ──▶ spool ──╯

- `add_event` (any thread) checks two integers and puts the event on a C queue: no lock shared
  with the workers, no I/O, never blocks. Past the intake limit (producers outrunning the
  collector) it refuses and counts the drop. `add_sized_event` (Track's events, whose size the
  caller decides) also keeps the queued events' bytes within buffer_bytes.
- The collector forms batches: a non-bulk exporter gets whatever has arrived, at once; a bulk one
  gets a batch at max_events_in_memory events or flush_interval seconds after the batch's first
  event, whichever comes first, and on close; a batch is also sealed once it holds a quarter of
  buffer_bytes. For a bulk exporter the collector takes what has arrived, then sleeps COALESCE
  before it waits again: it is not woken (a thread switch charged to the RPC) by every event.
  A batch is kept in memory while the memory buffer (buffer_limit events and buffer_bytes bytes)
  has room and the exporter is healthy, else appended to the spool.
- The export thread delivers the spool's oldest record first (replay after a restart, spilled
  batches), then memory batches. A failed memory batch is written to the spool before it is
  retried, and so are the batches waiting in memory; until the spool's backlog is delivered, new
  batches go through the spool too. Retries use exponential backoff with full jitter and honour
  Retry-After. A PermanentExportError sends the batch to the dead-letter file instead.
- `close(timeout)` flushes the open batch, lets the export thread deliver the memory batches
  until the deadline (the spool keeps its backlog for the next start), then spools whatever is
  still in memory or in flight. Without a spool, that remainder is dropped, counted and logged.

Every event that does not reach the exporter is accounted for in `dropped_by_reason`, and logged.
Neither thread dies on an error (a disk error, a bug): it is logged, and the thread carries on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .exporter import Exporter, PermanentExportError, RetryableExportError, close_exporter
from .feature_event import Event, dumps, event_from_json
from .spool import Spool, SpoolRecord

_STOP: Any = object()
_FLUSH: Any = object()
LOG_EVERY = 10.0  # seconds between repeated warnings of the same kind
DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024
COALESCE = 0.005  # seconds a bulk exporter's collector lets events gather between wake-ups


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(maximum, initial*m**(n-1)))."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    max_retry_after: float = 300.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        # The exponent is capped: multiplier ** 1024 overflows a float after a long outage.
        cap = min(self.maximum, self.initial * self.multiplier ** min(max(0, attempt - 1), 60))
        delay = rng.uniform(0.0, cap)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay


def encode_batch(events: Sequence[Event]) -> bytes:
    return dumps([e.to_json() for e in events]).encode()


def decode_batch(payload: bytes) -> list[Event]:
    return [event_from_json(item) for item in json.loads(payload)]


class _Batch:
    __slots__ = ("events", "nbytes", "record")

    def __init__(self, events: list[Event], record: SpoolRecord | None = None, nbytes: int = -1) -> None:
        self.events = events
        self.record = record  # set when the batch was read from the spool
        self.nbytes = sum(e.size for e in events) if nbytes < 0 else nbytes


class _Throttle:
    """Log the first occurrence at once, then at most every LOG_EVERY seconds."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def ready(self, key: str) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is None or now - last >= LOG_EVERY:
            self._last[key] = now
            return True
        return False


class DataExporterScheduler:
    """Batches events for one exporter and delivers them at least once (see the module doc)."""

    def __init__(
        self,
        flush_interval: float,
        max_events_in_memory: int,
        exporter: Exporter,
        logger: logging.Logger | None = None,
        *,
        name: str | None = None,
        spool: Spool | None = None,
        buffer_limit: int | None = None,
        buffer_bytes: int | None = None,
        intake_limit: int | None = None,
        retry: RetryPolicy | None = None,
        dead_letter_path: str | Path | None = None,
        close_timeout: float = 10.0,
    ) -> None:
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if max_events_in_memory < 1:
            raise ValueError("max_events_in_memory must be at least 1")
        self.flush_interval = flush_interval
        self.max_events_in_memory = max_events_in_memory
        self.exporter = exporter
        self.name = name or type(exporter).__name__
        self.log = logger or logging.getLogger("sidecar.events")
        self.spool = spool
        # Sealed batches kept in memory (beyond it: spool); and events queued by add_event but not
        # yet batched, a burst absorber that only fills if producers outrun the batching thread.
        self.buffer_limit = buffer_limit or max(5 * max_events_in_memory, 10_000)
        self.intake_limit = intake_limit or max(self.buffer_limit, 50_000)
        # The same buffer in bytes (events' approximate in-memory size), and the bytes of sized
        # events (add_sized_event) queued at once; a batch is sealed at a quarter of it.
        self.buffer_bytes = buffer_bytes or DEFAULT_BUFFER_BYTES
        self._batch_bytes = max(1, self.buffer_bytes // 4)
        self.retry = retry or RetryPolicy()
        self.dead_letter_path = Path(dead_letter_path) if dead_letter_path else None
        self.close_timeout = close_timeout
        self.is_bulk = bool(exporter.is_bulk)

        self._intake: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._put = self._intake.put_nowait
        self._qsize = self._intake.qsize
        self._closing = False
        self._closed = False
        self._started = False

        # Shared by the collector, the export thread and close(); never taken by add_event.
        self._cond = threading.Condition(threading.Lock())
        self._memory: deque[_Batch] = deque()
        self._mem_events = 0
        self._mem_bytes = 0
        self._inflight: _Batch | None = None
        self._failing = False
        self._collector_done = False
        self._deadline: float | None = None
        self._abandoned = False

        self._received = 0  # written by the collector only
        self._open_bytes = 0  # bytes of the collector's open batch (written by the collector only)
        self._intake_in = 0  # bytes of sized events queued (under _hot_lock)
        self._intake_out = 0  # and taken by the collector (written by the collector only)
        self._sealed = 0  # events the collector has handed on (memory, spool or counted drop)
        self.exported = 0
        self.retried = 0
        self.spooled = 0
        self.dead_lettered = 0
        self.replayed = 0
        self._dropped: dict[str, int] = {}
        self._errors: dict[str, int] = {}  # failed export attempts by reason (under _cond)
        self._hot_lock = threading.Lock()  # only on add_event's refusal path
        self._hot_drops: dict[str, int] = {}
        self._hot_logged: dict[str, int] = {}
        self._throttle = _Throttle()
        self._rng = random.Random()
        self._collector = threading.Thread(
            target=self._collect, name=f"events-{self.name}-batch", daemon=True
        )
        self._sender = threading.Thread(
            target=self._send_loop, name=f"events-{self.name}-export", daemon=True
        )

    # ---- the hot path ------------------------------------------------------------------------

    def add_event(self, event: Event) -> bool:
        """Queue one event; never blocks, never does I/O. False when refused (counted as dropped)."""
        if event.kind != "feature":
            return self.add_sized_event(event)
        return self.add_feature_event(event)

    def add_feature_event(self, event: Event) -> bool:
        """add_event for a FeatureEvent (the hot path: two integer checks and a queue put)."""
        if self._closing or self._qsize() >= self.intake_limit:
            self._refuse("closed" if self._closing else "intake_full")
            return False
        self._put(event)
        return True

    def add_sized_event(self, event: Event) -> bool:
        """add_event, keeping the bytes of the sized events queued within buffer_bytes: for events
        whose size the caller decides (Track). A lock, but never one held by I/O."""
        if self._closing or self._qsize() >= self.intake_limit:
            self._refuse("closed" if self._closing else "intake_full")
            return False
        size = event.size
        with self._hot_lock:
            if self._intake_in - self._intake_out + size > self.buffer_bytes:
                refused = True
            else:
                refused = False
                self._intake_in += size
        if refused:
            self._refuse("intake_full")
            return False
        self._put(event)
        return True

    def _refuse(self, reason: str) -> None:
        with self._hot_lock:
            self._hot_drops[reason] = self._hot_drops.get(reason, 0) + 1
        if reason == "closed" and self._collector_done:
            self._report_refusals()  # nobody else is left to log it

    @property
    def saturated(self) -> bool:
        """True when a new event would be dropped: memory buffer full and no room in the spool."""
        queued = self._qsize()
        if self._closing or queued >= self.intake_limit:
            return True
        # Queued and half-batched events count too: they will need room in memory or the spool.
        held = self._intake_in - self._intake_out + self._open_bytes + self._mem_bytes
        if queued + self._open + self._mem_events < self.buffer_limit and held < self.buffer_bytes:
            return False
        return self.spool is None or self.spool.is_full

    # ---- lifecycle ---------------------------------------------------------------------------

    def start_daemon(self) -> None:
        """Start the worker threads (idempotent). Spooled batches from a previous run go first."""
        if self._started:
            return
        self._started = True
        self._collector.start()
        self._sender.start()

    def flush(self) -> None:
        """Seal the open batch now instead of waiting for flush_interval (does not wait)."""
        self._put(_FLUSH)

    def close(self, timeout: float | None = None) -> None:
        """Flush, deliver what can be delivered within `timeout` seconds, spool the rest."""
        if self._closed:
            return
        self._closed = True
        total = self.close_timeout if timeout is None else timeout
        # Keep part of the time for writing what is left to the spool.
        reserve = min(1.0, 0.2 * total) if self.spool is not None else 0.0
        deadline = time.monotonic() + total - reserve
        self.start_daemon()
        self._closing = True
        self._put(_STOP)
        # The batching thread does no network I/O: give it a moment even with no time left.
        self._collector.join(max(0.5, deadline - time.monotonic()))
        with self._cond:
            self._deadline = deadline
            self._cond.notify_all()
        self._sender.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._abandoned = True
            leftovers: list[_Batch] = []
            # A sender still alive with no batch in hand is only idle: nothing hangs.
            hanging = self._inflight if self._sender.is_alive() else None
            if self._inflight is not None and self._inflight.record is None:
                leftovers.append(self._inflight)
            leftovers.extend(self._memory)
            self._memory.clear()
            self._mem_events = 0
            self._mem_bytes = 0
            self._inflight = None
            self._cond.notify_all()
        stray = self._drain_intake()
        if self._collector.is_alive():
            self._drop(self._open, "shutdown_timeout")
            self.log.error("events %s: the batching thread did not stop in time", self.name)
        if stray:
            leftovers.append(_Batch(stray))
        # Where the hanging batch ended up, for the warning: already in the spool, or as below.
        fate = "was spooled and will be sent again after a restart"
        for batch in leftovers:
            if self.spool is None:
                self._drop(len(batch.events), "shutdown_no_spool")
                reason: str | None = "shutdown_no_spool"
            else:
                reason = self._spool_events(batch.events)
                if reason is not None:
                    self._drop(len(batch.events), reason)
            if batch is hanging and reason is not None:
                fate = f"was dropped ({reason}, counted)"
        if hanging is not None:
            self.log.warning(
                "events %s: export still running at the shutdown deadline; its batch of %d events %s",
                self.name,
                len(hanging.events),
                fate,
            )
        self._report_refusals()
        stats = self.stats()
        self.log.info(
            "events %s closed: exported=%d spooled=%d (pending in spool: %d) dead_lettered=%d dropped=%d",
            self.name,
            stats["exported"],
            stats["spooled"],
            stats["spool_pending"],
            stats["dead_lettered"],
            stats["dropped"],
        )
        if self.spool is not None:
            self.spool.close()
        try:
            close_exporter(self.exporter)
        except Exception:
            self.log.exception("events %s: closing the exporter failed", self.name)

    def _drain_intake(self) -> list[Event]:
        events: list[Event] = []
        while True:
            try:
                item = self._intake.get_nowait()
            except queue.Empty:
                return events
            if item is not _STOP and item is not _FLUSH:
                events.append(item)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued event is exported (or dead-lettered); False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._cond:
                idle = (
                    self._qsize() == 0
                    and self._open == 0
                    and self._mem_events == 0
                    and self._inflight is None
                    and (self.spool is None or self.spool.pending_records == 0)
                )
            if idle:
                return True
            time.sleep(0.005)
        return False

    # ---- counters ----------------------------------------------------------------------------

    @property
    def _open(self) -> int:
        """Events the collector has taken from the intake but not handed on yet."""
        return self._received - self._sealed

    @property
    def enqueued(self) -> int:
        return self._received + self._qsize()

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        merged = dict(self._dropped)
        with self._hot_lock:
            for reason, n in self._hot_drops.items():
                merged[reason] = merged.get(reason, 0) + n
        if self.spool is not None and self.spool.corrupt_events:
            merged["corrupt"] = merged.get("corrupt", 0) + self.spool.corrupt_events
        return merged

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())

    def stats(self) -> dict[str, int]:
        return {
            "enqueued": self.enqueued,
            "exported": self.exported,
            "retried": self.retried,
            "spooled": self.spooled,
            "replayed": self.replayed,
            "dead_lettered": self.dead_lettered,
            "dropped": self.dropped,
            "in_memory": self._qsize() + self._open + self._mem_events,
            "in_memory_bytes": self._intake_in - self._intake_out + self._open_bytes + self._mem_bytes,
            "spool_pending": self.spool.pending_events if self.spool is not None else 0,
            "spool_bytes": self.spool.total_bytes if self.spool is not None else 0,
            "failing": int(self._failing),
        }

    def _drop(self, n: int, reason: str) -> None:
        if n <= 0:
            return
        with self._cond:
            self._dropped[reason] = self._dropped.get(reason, 0) + n
        if self._throttle.ready("drop:" + reason):
            self.log.warning(
                "events %s: dropped %d events (%s); %d dropped for this reason so far",
                self.name,
                n,
                reason,
                self._dropped[reason],
            )

    def _report_refusals(self) -> None:
        with self._hot_lock:
            new = {r: n - self._hot_logged.get(r, 0) for r, n in self._hot_drops.items()}
            self._hot_logged = dict(self._hot_drops)
        for reason, n in new.items():
            if n > 0:
                self.log.warning("events %s: refused %d events (%s)", self.name, n, reason)

    # ---- collector thread --------------------------------------------------------------------

    def _collect(self) -> None:
        try:
            while True:
                try:
                    self._collect_loop()
                    return
                except Exception:
                    # Not a reason to stop batching: the open batch is lost (counted), the rest goes on.
                    self.log.exception("events %s: the batching thread failed; carrying on", self.name)
                    self._drop(self._open, "internal_error")
                    self._sealed = self._received
                    self._open_bytes = 0
                    time.sleep(0.05)
        finally:
            with self._cond:
                self._collector_done = True
                self._cond.notify_all()

    def _collect_loop(self) -> None:
        get = self._intake.get
        get_nowait = self._intake.get_nowait
        size = self.max_events_in_memory
        max_bytes = self._batch_bytes
        batch: list[Event] = []
        deadline = 0.0
        stopping = False
        while not stopping:
            try:
                wait = max(0.0, deadline - time.monotonic()) if batch and self.is_bulk else None
                item = get(timeout=wait)
            except queue.Empty:
                self._seal(batch)
                batch = []
                continue
            seal_now = False
            while True:
                if item is _STOP:
                    stopping = True
                    break
                if item is _FLUSH:
                    seal_now = True
                else:
                    if not batch:
                        deadline = time.monotonic() + self.flush_interval
                    batch.append(item)
                    self._received += 1
                    nbytes = item.size
                    self._open_bytes += nbytes
                    if item.kind != "feature":
                        self._intake_out += nbytes  # counted in by add_sized_event
                    if len(batch) >= size or self._open_bytes >= max_bytes:
                        self._seal(batch)
                        batch = []
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
            if batch and (seal_now or stopping or not self.is_bulk):
                self._seal(batch)
                batch = []
            if self._hot_drops:
                self._report_refusals()
            if self.is_bulk and not stopping:
                # Let events gather before the next get: a collector woken by every put costs each
                # RPC a thread switch; a bulk exporter's batches wait for flush_interval anyway.
                time.sleep(COALESCE)
        # Events that raced with close(): take them too.
        rest = self._drain_intake()
        self._received += len(rest)
        for start in range(0, len(rest), size):
            self._seal(rest[start : start + size])

    def _seal(self, events: list[Event]) -> None:
        """Hand a finished batch to the export thread: memory if it fits and exports work, else spool."""
        n = len(events)
        if n == 0:
            return
        batch = _Batch(events)
        self._open_bytes = 0
        with self._cond:
            fits = self._fits(batch)
            to_spool = self.spool is not None and (self._failing or not fits)
            if not to_spool and fits:
                self._keep(batch)
                self._sealed += n
                self._cond.notify_all()
                return
        reason = "buffer_full"
        if to_spool:
            if not fits:
                # The spool is delivered before memory: move the older batches waiting in memory
                # there first, so that events keep their order (one user's events, for Kafka keys).
                self._spill_memory()
            spool_reason = self._spool_events(events)
            if spool_reason is None:
                with self._cond:
                    self._sealed += n
                    self._cond.notify_all()
                return
            reason = spool_reason
            with self._cond:
                if self._fits(batch):
                    # The spool is full (or broken) but memory has room: keep the events there.
                    self._keep(batch)
                    self._sealed += n
                    self._cond.notify_all()
                    return
        self._drop(n, reason)
        with self._cond:
            self._sealed += n

    def _fits(self, batch: _Batch) -> bool:
        """Room in the memory buffer, in events and in bytes (called under _cond)."""
        return (
            self._mem_events + len(batch.events) <= self.buffer_limit
            and self._mem_bytes + batch.nbytes <= self.buffer_bytes
        )

    def _keep(self, batch: _Batch, front: bool = False) -> None:
        """Add a batch to the memory buffer (under _cond)."""
        if front:
            self._memory.appendleft(batch)
        else:
            self._memory.append(batch)
        self._mem_events += len(batch.events)
        self._mem_bytes += batch.nbytes

    def _forget(self, batch: _Batch) -> None:
        """A memory batch has left the buffer: delivered, spooled or dropped (under _cond)."""
        self._mem_events -= len(batch.events)
        self._mem_bytes -= batch.nbytes

    def _spool_error(self, exc: OSError) -> None:
        assert self.spool is not None
        if self._throttle.ready("spool-error"):
            self.log.error("events %s: cannot write to spool %s: %s", self.name, self.spool.directory, exc)

    def _spool_events(self, events: list[Event]) -> str | None:
        """Append events to the spool; None on success, else why they could not be spooled."""
        assert self.spool is not None
        try:
            record = self.spool.append(encode_batch(events), len(events))
        except OSError as exc:
            self._spool_error(exc)
            return "spool_error"
        if record is None:
            return "spool_closed" if self.spool.closed else "spool_full"
        with self._cond:
            self.spooled += len(events)
            self._cond.notify_all()
        return None

    # ---- export thread -----------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            try:
                self._send_batches()
                return
            except Exception:
                # Never a reason to stop delivering: put the in-flight batch back and carry on.
                self.log.exception("events %s: the export thread failed; carrying on", self.name)
                with self._cond:
                    batch, self._inflight = self._inflight, None
                    if batch is not None and batch.record is None and not self._abandoned:
                        self._memory.appendleft(batch)  # still counted in _mem_events
                if not self._sleep(1.0):
                    return

    def _send_batches(self) -> None:
        attempt = 0
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            error = self._export(batch)
            if error is None:
                if attempt and self._throttle.ready("export-recovered"):
                    self.log.info("events %s: export recovered after %d failed attempts", self.name, attempt)
                attempt = 0
                self._delivered(batch)
            elif isinstance(error, PermanentExportError):
                rejected = batch.events if error.events is None else list(error.events)
                self._dead_letter(rejected, str(error))
                self._count_error(error)
                self._delivered(batch, dead=len(rejected))
            else:
                attempt += 1
                if not self._failed(batch, error, attempt):
                    return

    def _next_batch(self) -> _Batch | None:
        while True:
            with self._cond:
                while True:
                    if self._abandoned:
                        return None
                    now = time.monotonic()
                    if self._deadline is not None and now >= self._deadline:
                        return None
                    closing = self._deadline is not None
                    # Closing: memory first (the spool keeps its backlog for the next start).
                    if not closing and self.spool is not None and self.spool.pending_records:
                        break
                    if self._memory:
                        batch = self._memory.popleft()
                        self._inflight = batch
                        return batch
                    if self._collector_done:
                        return None
                    self._cond.wait(None if self._deadline is None else self._deadline - now)
            assert self.spool is not None
            record = self.spool.peek()
            if record is None:
                if self.spool.pending_records and not self._sleep(1.0):
                    return None  # unreadable spool (logged by the spool): wait, then try again
                continue
            try:
                events = decode_batch(record.payload)
            except (ValueError, KeyError, TypeError) as exc:
                self.log.error("events %s: undecodable spool record skipped: %s", self.name, exc)
                self._drop(record.count, "corrupt")
                self.spool.ack(record)
                continue
            batch = _Batch(events, record)
            with self._cond:
                if self._abandoned:
                    return None
                self._inflight = batch
            return batch

    def _export(self, batch: _Batch) -> Exception | None:
        try:
            self.exporter.export(batch.events)
        except Exception as exc:
            return exc
        return None

    def _count_error(self, error: Exception) -> None:
        reason = getattr(error, "reason", None) or type(error).__name__
        with self._cond:
            self._errors[reason] = self._errors.get(reason, 0) + 1

    @property
    def errors_by_reason(self) -> dict[str, int]:
        """Failed export attempts, by the error's reason (or class name)."""
        with self._cond:
            return dict(self._errors)

    def _delivered(self, batch: _Batch, dead: int = 0) -> None:
        """A batch is done: `dead` of its events were dead-lettered, the rest exported."""
        n = len(batch.events)
        with self._cond:
            if self._abandoned:
                return
            self._inflight = None
            if batch.record is None:
                self._forget(batch)
            else:
                self.replayed += n
            self.dead_lettered += dead
            self.exported += n - dead
            self._cond.notify_all()
        if batch.record is not None and self.spool is not None:
            self.spool.ack(batch.record)
        with self._cond:
            # Batches keep going through the spool until its backlog is delivered.
            if self.spool is None or self.spool.pending_records == 0:
                self._failing = False

    def _failed(self, batch: _Batch, error: Exception, attempt: int) -> bool:
        """Keep the batch (spool first), wait out the backoff; False when it is time to stop."""
        retry_after = error.retry_after if isinstance(error, RetryableExportError) else None
        delay = self.retry.delay(attempt, self._rng, retry_after)
        if self._abandoned:
            self._count_error(error)
            return False  # close() gave up on this export and took care of its batch
        if self._throttle.ready("export-failed"):
            self.log.warning(
                "events %s: export of %d events failed (attempt %d, next try in %.1fs): %s",
                self.name,
                len(batch.events),
                attempt,
                delay,
                error if str(error) else type(error).__name__,
            )
        self._count_error(error)  # once logged: whoever sees the count finds the log line
        with self._cond:
            self.retried += 1
            self._failing = True
            if self._abandoned:
                return False  # close() already took the in-flight batch
            self._inflight = None
            if batch.record is None:
                # Back to the front of memory, still counted in _mem_events; _spill_memory moves
                # it on to the spool under the lock, so close() cannot spool it a second time.
                self._memory.appendleft(batch)
        if self.spool is not None:
            self._spill_memory()
        return self._sleep(delay)

    def _spill_memory(self) -> None:
        """While exports fail, move the batches waiting in memory to the spool (under the lock,
        so close() never sees a batch that is in neither place)."""
        assert self.spool is not None
        with self._cond:
            while self._memory and not self._abandoned:
                batch = self._memory[0]
                try:
                    record = self.spool.append(encode_batch(batch.events), len(batch.events))
                except OSError as exc:
                    self._spool_error(exc)
                    return  # the batch stays in memory
                if record is None:
                    return
                self._memory.popleft()
                self._forget(batch)
                self.spooled += len(batch.events)
                self._cond.notify_all()

    def _sleep(self, delay: float) -> bool:
        """Wait `delay` seconds; cut short when close() starts. False once past the deadline."""
        end = time.monotonic() + delay
        with self._cond:
            closing_before = self._deadline is not None
            while True:
                if self._abandoned:
                    return False
                now = time.monotonic()
                if self._deadline is not None:
                    if now >= self._deadline:
                        return False
                    if not closing_before:
                        return True  # shutdown began: one more try right away
                    limit = min(end, self._deadline)
                else:
                    limit = end
                if now >= limit:
                    return True
                self._cond.wait(limit - now)

    def _dead_letter(self, events: Sequence[Event], reason: str) -> None:
        failed_at = datetime.now(UTC).isoformat()
        # JSON lines, strict: every line parses on its own, whatever the events hold.
        lines = [
            dumps({"reason": reason, "exporter": self.name, "failedAt": failed_at, "event": e.to_json()})
            for e in events
        ]
        where = "the log"
        if self.dead_letter_path is not None:
            try:
                self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.dead_letter_path, "a", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
                    f.flush()
                    with contextlib.suppress(OSError):
                        os.fsync(f.fileno())
                where = str(self.dead_letter_path)
            except OSError as exc:
                self.log.error("events %s: cannot write dead-letter file: %s", self.name, exc)
        if where == "the log":
            for line in lines:
                self.log.error("events %s: dead letter: %s", self.name, line)
        self.log.error(
            "events %s: %d events rejected permanently (%s); written to %s",
            self.name,
            len(lines),
            reason,
            where,
        )
