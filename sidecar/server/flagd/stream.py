"""flagd's EventStream: provider_ready, configuration_change, keep_alive, provider_shutdown.

One `EventBroadcaster` per server feeds every open stream of both protocol versions. Each stream
is a generator running on one of the gRPC server's worker threads (grpcio's sync API); it blocks on
its own queue, so an idle stream costs a parked thread and no CPU, and it wakes for exactly three
things: a flag-set change, the keep-alive timeout, and its end (the client went away: gRPC's
termination callback drops a marker in the queue; or `shutdown()`). Because every open stream
holds a worker thread for its whole life, it is registered under the server's stream admission
(sidecar.server.streams: --max-streams, --max-streams-per-connection, --stream-idle-timeout; the
pool is unary workers + --max-streams). `max_streams` here caps EventStreams alone, within that;
beyond either, a new stream is refused with RESOURCE_EXHAUSTED and the provider retries after its
backoff. The keep_alive it sends counts as activity, so an EventStream is never idle-closed while
its client reads.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol

import grpc

from ...engine import Flag, FlagSet, Segment
from ...store import FlagSetChange
from ..edge import abort

log = logging.getLogger(__name__)

PROVIDER_READY: Final = "provider_ready"
CONFIGURATION_CHANGE: Final = "configuration_change"
KEEP_ALIVE: Final = "keep_alive"
PROVIDER_SHUTDOWN: Final = "provider_shutdown"

# flagd sends a keep_alive after 20 s without other traffic.
DEFAULT_KEEPALIVE_INTERVAL: Final = 20.0
# Open EventStreams allowed at once (within the server's --max-streams). A provider instance keeps
# one stream open, so this is "application processes using a flagd provider against this sidecar".
DEFAULT_MAX_EVENT_STREAMS: Final = 32
# How often a stream opened before the first flag set was loaded checks for it.
_READY_POLL: Final = 0.05

# flagd's change types in configuration_change's data.flags.<key>.type
_ADDED, _UPDATED, _REMOVED = "write", "update", "delete"

Event = tuple[str, Mapping[str, Any] | None]


class _Store(Protocol):
    @property
    def ready(self) -> bool: ...

    def subscribe(self, listener: Callable[[FlagSetChange], None]) -> Callable[[], None]: ...


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_CLOSE: Final = _Marker("close")  # the RPC ended (client cancelled, deadline): stop silently
_SHUTDOWN: Final = _Marker("shutdown")  # the server is stopping: say goodbye, then stop
_LOADED: Final = _Marker("loaded")  # the first flag set is in: ready now, but that load is no change


class EventBroadcaster:
    """Fans flag-set changes out to every open EventStream."""

    def __init__(
        self,
        store: _Store,
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        max_streams: int = DEFAULT_MAX_EVENT_STREAMS,
    ) -> None:
        if keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive")
        self.keepalive_interval = keepalive_interval
        self.max_streams = max_streams
        self._store = store
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._streams: set[queue.SimpleQueue[Any]] = set()
        self._closed = False
        self._change_lock = threading.Lock()
        # The last flag set seen, to tell which segments a change touched.
        self._flag_set: FlagSet | None = getattr(store, "flag_set", None)
        # Until the store's first load is seen, a change is that load, not a configuration change.
        self._first_load_seen = bool(getattr(store, "ready", False))
        self._unsubscribe = store.subscribe(self._on_change)

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    # ------------------------------------------------------------ producers

    def _on_change(self, change: FlagSetChange) -> None:
        with self._change_lock:  # reloads may report from different threads
            previous, self._flag_set = self._flag_set, change.flag_set
            first_load, self._first_load_seen = not self._first_load_seen, True
        if first_load:
            # Not sent as a change even to a stream that saw the store ready before this call
            # (it polls `ready`, which the store sets before it calls its listeners).
            with self._lock:
                streams = list(self._streams)
            for stream in streams:
                stream.put(_LOADED)
            return
        flags: dict[str, dict[str, str]] = {}
        if change.segments_changed:
            for key in _flags_using_changed_segments(previous, change.flag_set):
                flags[key] = {"type": _UPDATED}
        flags.update({key: {"type": _ADDED} for key in change.added})
        flags.update({key: {"type": _UPDATED} for key in change.updated})
        flags.update({key: {"type": _REMOVED} for key in change.removed})
        if not flags:
            return  # only segments no flag uses changed: no flag can answer differently
        data = {"flags": dict(sorted(flags.items()))}
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.put(data)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Send provider_shutdown on every stream and end them; wait up to `timeout` for them to go.

        Call this before stopping the gRPC server: open streams never end by themselves, so a
        graceful `server.stop(grace)` would otherwise wait out the whole grace period.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._unsubscribe()
            for stream in self._streams:
                stream.put(_SHUTDOWN)
            self._drained.wait_for(lambda: not self._streams, timeout)

    # ------------------------------------------------------------ one stream

    def events(self, context: grpc.ServicerContext) -> Iterator[Event]:
        """The (type, data) events of one EventStream call, until it ends."""
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self._lock:
            if self._closed:
                state = "closed"
            elif len(self._streams) >= self.max_streams:
                state = "full"
            else:
                state = "open"
                self._streams.add(inbox)
        if state == "closed":
            yield PROVIDER_SHUTDOWN, None
            return
        if state == "full":
            abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many open event streams (at most {self.max_streams})",
            )
        try:
            if not context.add_callback(lambda: inbox.put(_CLOSE)):
                return  # the call already ended
            yield from self._run(inbox)
        finally:
            with self._lock:
                self._streams.discard(inbox)
                self._drained.notify_all()

    def _run(self, inbox: queue.SimpleQueue[Any]) -> Iterator[Event]:
        ready = self._store.ready
        if ready:
            yield PROVIDER_READY, None
        while True:
            try:
                item = inbox.get(timeout=self.keepalive_interval if ready else _READY_POLL)
            except queue.Empty:
                if ready:
                    yield KEEP_ALIVE, None
                elif self._store.ready:
                    ready = True
                    yield PROVIDER_READY, None
                continue
            if item is _CLOSE:
                return
            if item is _SHUTDOWN:
                yield PROVIDER_SHUTDOWN, None
                return
            if item is _LOADED:
                if not ready and self._store.ready:
                    ready = True
                    yield PROVIDER_READY, None
                continue
            if ready:
                yield CONFIGURATION_CHANGE, item
            elif self._store.ready:
                # The first load is not a change (flagd does not report its first snapshot either).
                ready = True
                yield PROVIDER_READY, None


def _flags_using_changed_segments(previous: FlagSet | None, current: FlagSet) -> set[str]:
    """Keys of the flags whose rules reach (directly or through other segments) a changed segment."""
    if previous is None:
        changed = None  # unknown: every segment counts as changed
    else:
        before = {key: segment.fingerprint for key, segment in previous.segments.items()}
        after = {key: segment.fingerprint for key, segment in current.segments.items()}
        changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    affected = set()
    for key, flag in current.flags.items():
        used = _segments_of(flag)
        if used and (changed is None or not used.isdisjoint(changed)):
            affected.add(key)
    return affected


def _segments_of(flag: Flag) -> set[str]:
    seen: set[str] = set()
    pending: list[Segment] = [
        segment for rule in flag.rules for constraint in rule.constraints for segment in constraint.segments
    ]
    while pending:
        segment = pending.pop()
        if segment.key in seen:
            continue
        seen.add(segment.key)
        pending += [
            nested
            for rule in segment.rules
            for constraint in rule.constraints
            for nested in constraint.segments
        ]
    return seen
