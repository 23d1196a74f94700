"""The sync fan-out: one publication of the applied flag set, followed by any number of subscribers.

Protocol-agnostic: it hands out Snapshots (the whole set at a revision) and Changes (what one
revision changed, or what several did, merged for a resume), and each protocol encodes them once,
caching the bytes on the object (`encoded`), however many subscribers send them. flagsidecar.v1's
Watch (watch_service.py) sends deltas; flagd.sync.v1, which sends whole documents, can subscribe
the same way and encode `change.snapshot`.

Threads: the store reports a change on its reload thread (`_on_store_change`), which builds the new
Snapshot and the Change and hands them to the event loop; everything else (the change log, the
subscribers, their queues) lives on that loop, so it needs no lock.

Revisions are integers that increase with every change and never repeat across restarts: each is
the larger of "previous + 1" and the wall clock in microseconds. A revision a client got from an
earlier process is therefore below this process's first one, and is told apart from one that only
fell out of the change log.

A subscriber has a bounded queue. A subscriber that does not keep up (its queue is full) loses
its queue and is marked behind: its next message is the whole current set. So a slow or dead
subscriber costs the publisher one check and never delays the others; how long a subscriber may
take to accept a message before it is closed is the stream's business (watch_service.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ...engine import FlagDefinition, FlagSet, SegmentDefinition
from ...store import FlagSetChange
from .selector import DEFAULT_FLAG_SET

log = logging.getLogger(__name__)

DEFAULT_LOG_SIZE: Final = 256  # changes kept for resuming streams
DEFAULT_QUEUE_SIZE: Final = 32  # changes a subscriber may have waiting before it is behind

Marks = Mapping[str, tuple[str, int]]  # key -> (fingerprint, version): what tells a change


class _Store(Protocol):
    @property
    def flag_set(self) -> FlagSet: ...

    def subscribe(self, listener: Callable[[FlagSetChange], None]) -> Callable[[], None]: ...


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """The whole selected set at one revision (definitions carry the served versions)."""

    flag_set: str
    revision: int
    flags: Mapping[str, FlagDefinition]
    segments: Mapping[str, SegmentDefinition]
    flag_marks: Marks = field(repr=False, default_factory=dict)
    segment_marks: Marks = field(repr=False, default_factory=dict)
    # A protocol's encodings of this snapshot (loop thread only).
    encoded: dict[Any, bytes] = field(repr=False, default_factory=dict)
    # Resumes from an older revision to this one, merged (loop thread only).
    resumes: dict[int, Change] = field(repr=False, default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Change:
    """What turned revision `since` into `snapshot`: keys of added or changed flags and segments
    (their definitions are in the snapshot) and of removed ones."""

    since: int
    snapshot: Snapshot
    flags: frozenset[str]
    removed_flags: frozenset[str]
    segments: frozenset[str]
    removed_segments: frozenset[str]
    encoded: dict[Any, bytes] = field(repr=False, default_factory=dict)

    @property
    def revision(self) -> int:
        return self.snapshot.revision


class Resync(enum.Enum):
    """Why a subscriber gets the whole set rather than a Change."""

    INITIAL = "initial"
    REVISION_TOO_OLD = "revision_too_old"
    UNKNOWN_REVISION = "unknown_revision"
    FELL_BEHIND = "fell_behind"


class UnknownFlagSet(LookupError):
    """A selection this fan-out does not publish (the message names what it does publish)."""


class SubscriptionClosed(Exception):
    """The fan-out closed the subscription (the server is stopping); str() says so."""


class Subscription:
    """One subscriber's view: what it was sent last, and what is waiting for it."""

    __slots__ = ("_closed", "_fanout", "_pending", "_queue_size", "_wake", "behind", "flag_set")

    def __init__(self, fanout: SyncFanout, flag_set: str, queue_size: int) -> None:
        self._fanout = fanout
        self.flag_set = flag_set
        self._queue_size = queue_size
        self._pending: deque[Change] = deque()
        self._wake = asyncio.Event()
        self._closed: str | None = None
        self.behind = False  # the next message is the whole current set

    def offer(self, change: Change) -> None:
        if self.behind:
            return  # the whole set it will get includes this change
        if len(self._pending) >= self._queue_size:
            self._pending.clear()
            self.behind = True
            self._fanout.stats["fell_behind"] += 1
        else:
            self._pending.append(change)
        self._wake.set()

    def close(self, reason: str) -> None:
        self._closed = reason
        self._wake.set()

    async def next(self, timeout: float) -> Change | Snapshot | None:
        """The next Change, or the whole current set for a subscriber that fell behind, or None
        after `timeout` seconds without either. Raises SubscriptionClosed."""
        while True:
            if self._closed is not None:
                raise SubscriptionClosed(self._closed)
            if self.behind:
                self.behind = False
                return self._fanout.snapshot(self.flag_set)
            if self._pending:
                return self._pending.popleft()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return None

    def cancel(self) -> None:
        """The subscriber is gone: stop offering it changes."""
        self._fanout._subscribers.discard(self)


def _next_revision(previous: int) -> int:
    return max(previous + 1, time.time_ns() // 1000)


def _versioned(flag_set: FlagSet, previous: Snapshot | None) -> tuple[dict[str, FlagDefinition], dict]:
    """Each flag's definition with the version it is served under (the store's, for a file that
    gives none), reusing the previous snapshot's for what did not change."""
    flags: dict[str, FlagDefinition] = {}
    marks: dict[str, tuple[str, int]] = {}
    for key, flag in flag_set.flags.items():
        mark = (flag.fingerprint, flag.version)
        marks[key] = mark
        if previous is not None and previous.flag_marks.get(key) == mark:
            flags[key] = previous.flags[key]
            continue
        definition = flag.definition
        if definition is None:
            raise ValueError(f"flag {key!r} was compiled without its definition: it cannot be synced")
        flags[key] = (
            definition
            if definition.version == flag.version
            else dataclasses.replace(definition, version=flag.version)
        )
    return flags, marks


def _segments(flag_set: FlagSet) -> tuple[dict[str, SegmentDefinition], dict]:
    segments: dict[str, SegmentDefinition] = {}
    marks: dict[str, tuple[str, int]] = {}
    for key, segment in flag_set.segments.items():
        if segment.definition is None:
            raise ValueError(f"segment {key!r} was compiled without its definition: it cannot be synced")
        segments[key] = segment.definition
        marks[key] = (segment.fingerprint, 0)
    return segments, marks


def _changed(before: Marks, after: Marks) -> tuple[frozenset[str], frozenset[str]]:
    changed = frozenset(key for key, mark in after.items() if before.get(key) != mark)
    return changed, frozenset(before.keys() - after.keys())


class SyncFanout:
    """The publication of one store's flag set (see the module docstring). Built, started and
    used on the event loop `loop`; the store's change reports arrive from any thread."""

    def __init__(
        self,
        store: _Store,
        loop: asyncio.AbstractEventLoop,
        flag_set: str = DEFAULT_FLAG_SET,
        log_size: int = DEFAULT_LOG_SIZE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        if log_size < 1 or queue_size < 1:
            raise ValueError("log_size and queue_size must be at least 1")
        self._store = store
        self._loop = loop
        self.flag_set = flag_set
        self.log_size = log_size
        self.queue_size = queue_size
        self._build_lock = threading.Lock()  # reloads may report from different threads
        self._log: deque[Change] = deque(maxlen=log_size)
        self._subscribers: set[Subscription] = set()
        self._closed = False
        self.stats = {"published": 0, "fell_behind": 0}
        with self._build_lock:
            # Subscribed before the first snapshot is read: a reload in between is not missed
            # (its report waits for the lock, and then publishes what it changed, if anything).
            self._unsubscribe = store.subscribe(self._on_store_change)
            self._built = self._snapshot_of(store.flag_set, None)  # the last one built (reload side)
            self._current = self._built  # the last one published (loop side)
            self.first_revision = self._built.revision

    # ------------------------------------------------------------ publishing (store -> loop)

    def _snapshot_of(self, flag_set: FlagSet, previous: Snapshot | None) -> Snapshot:
        flags, flag_marks = _versioned(flag_set, previous)
        segments, segment_marks = _segments(flag_set)
        revision = _next_revision(previous.revision if previous is not None else 0)
        return Snapshot(self.flag_set, revision, flags, segments, flag_marks, segment_marks)

    def _on_store_change(self, change: FlagSetChange) -> None:
        with self._build_lock:
            before = self._built
            after = self._snapshot_of(change.flag_set, before)
            flags, removed_flags = _changed(before.flag_marks, after.flag_marks)
            segments, removed_segments = _changed(before.segment_marks, after.segment_marks)
            if not (flags or removed_flags or segments or removed_segments):
                return
            self._built = after
            record = Change(before.revision, after, flags, removed_flags, segments, removed_segments)
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone
            self._loop.call_soon_threadsafe(self._publish, record)

    def _publish(self, change: Change) -> None:
        if self._closed:
            return
        self._log.append(change)
        self._current = change.snapshot
        self.stats["published"] += 1
        for subscriber in list(self._subscribers):
            subscriber.offer(change)

    # ------------------------------------------------------------ subscribing (loop)

    def snapshot(self, flag_set: str | None = None) -> Snapshot:
        """The current set of a selection (None: the one published). Raises UnknownFlagSet."""
        self._check(flag_set)
        return self._current

    def subscribe(self, flag_set: str | None = None) -> tuple[Subscription, Snapshot]:
        """A new subscriber of a selection, and the snapshot it starts from (every later change is
        offered to it). Raises UnknownFlagSet, or SubscriptionClosed once the fan-out is closed."""
        self._check(flag_set)
        if self._closed:
            raise SubscriptionClosed("the server is shutting down")
        subscription = Subscription(self, self.flag_set, self.queue_size)
        self._subscribers.add(subscription)
        return subscription, self._current

    def since(self, revision: int, flag_set: str | None = None) -> Change | Resync:
        """What changed from `revision` to the current set, or why only the whole set will do."""
        current = self.snapshot(flag_set)
        cached = current.resumes.get(revision)
        if cached is not None:
            return cached
        if revision == current.revision:
            change = Change(revision, current, frozenset(), frozenset(), frozenset(), frozenset())
        else:
            steps = self._steps_from(revision)
            if isinstance(steps, Resync):
                return steps
            change = _merged(revision, current, steps)
        if len(current.resumes) < self.log_size:
            current.resumes[revision] = change
        return change

    def _steps_from(self, revision: int) -> list[Change] | Resync:
        if revision < self.first_revision or revision > self._current.revision:
            return Resync.UNKNOWN_REVISION
        for index, change in enumerate(self._log):
            if change.since == revision:
                return list(self._log)[index:]
        if self._log and revision < self._log[0].since:
            return Resync.REVISION_TOO_OLD
        return Resync.UNKNOWN_REVISION  # within the range, but never a revision sent

    def _check(self, flag_set: str | None) -> None:
        if flag_set is not None and flag_set != self.flag_set:
            raise UnknownFlagSet(
                f"this sidecar serves flag set {self.flag_set!r}, not {flag_set!r}: select "
                f"flag-set={self.flag_set} or leave the selector empty"
            )

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        """End every subscription (loop thread); no change is published from now on."""
        self._closed = True
        self._unsubscribe()
        for subscriber in list(self._subscribers):
            subscriber.close("the server is shutting down")
        self._subscribers.clear()


def _merged(since: int, current: Snapshot, steps: Iterable[Change]) -> Change:
    touched_flags: set[str] = set()
    touched_segments: set[str] = set()
    for step in steps:
        touched_flags |= step.flags | step.removed_flags
        touched_segments |= step.segments | step.removed_segments
    return Change(
        since,
        current,
        frozenset(key for key in touched_flags if key in current.flags),
        frozenset(key for key in touched_flags if key not in current.flags),
        frozenset(key for key in touched_segments if key in current.segments),
        frozenset(key for key in touched_segments if key not in current.segments),
    )
