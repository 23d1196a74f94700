"""How the flag source is doing, as the store hears it: up or down, and how old the served set is.

Fed by the source's listener calls (`lost`, `regained`, `confirmed`: sidecar.sources.document) and by
the store's own reloads (applied, rejected) and last-known-good start; read by /readyz, the gRPC
health service and /metrics. Any source feeds it; for a remote one (https://, a database, another
sidecar) the age of the served set is what an operator alerts on: the time since it was last known
to be what the source has (applied, or revalidated by a 304 or an unchanged revision).

A stale set is still served, and the sidecar stays ready: withdrawing every replica from traffic
because the control plane is down would turn a flag-source outage into an application outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One reading of the source's health (immutable: replaced as a whole on every change)."""

    up: bool = True
    reason: str = ""  # why it is down, naming the source ("" while up)
    down_since: float | None = None  # wall-clock seconds
    # Wall-clock seconds when the served set was last known to be the source's document (None
    # before the first set).
    current_at: float | None = None
    # The served set came from the state directory's copy, not from the source in this process.
    last_known_good: bool = False
    # The source's latest document was rejected: the served set is an older one.
    behind: bool = False

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the served set was last known current (None before the first set)."""
        if self.current_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.current_at)

    def stale_reasons(self, now: float | None = None) -> list[str]:
        """Why the served set may not be the source's document, for a person (empty: it is)."""
        reasons = []
        if not self.up:
            since = f" (since {when(self.down_since)})" if self.down_since is not None else ""
            reasons.append(f"{self.reason}{since}")
        if self.last_known_good:
            reasons.append("serving the last known good copy from --state-dir")
        if self.behind:
            reasons.append("the source's latest document was rejected")
        age = self.age(now)
        if reasons and age is not None:
            reasons.append(f"the served set was last current {age:.0f}s ago")
        return reasons


class SourceHealth:
    """The store's view of its source; `subscribe` hears every change of `up`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._status = SourceStatus()
        self._lock = threading.Lock()  # read-modify-write by the source thread and the store
        self._listeners: list[Callable[[SourceStatus], None]] = []

    @property
    def status(self) -> SourceStatus:
        return self._status

    def subscribe(self, listener: Callable[[SourceStatus], None]) -> Callable[[], None]:
        """Call `listener` on every change of `up`. Returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def lost(self, reason: str) -> None:
        self._update(up=False, reason=reason, since=self._clock())

    def regained(self) -> None:
        self._update(up=True)

    def applied(self) -> None:
        """A set fetched from the source was applied: up, current, not behind."""
        self._update(up=True, current_at=self._clock(), last_known_good=False, behind=False)

    def rejected(self) -> None:
        """The source's document was rejected (the last good set stays): it answered, but the set
        no longer follows it."""
        self._update(behind=True)

    def confirmed(self) -> None:
        """The source still has the served set's revision."""
        self._update(up=True, current_at=self._clock())

    def from_last_known_good(self, saved_at: float, down: str | None) -> None:
        """At start the source could not give a set (`down`: it could not be had, and why; None: its
        document was rejected); the state directory's copy is served."""
        if down is not None:
            self._update(up=False, reason=down, since=self._clock())
        self._update(current_at=saved_at, last_known_good=True)

    def _update(
        self,
        *,
        up: bool | None = None,
        reason: str = "",
        since: float | None = None,
        current_at: float | None = None,
        last_known_good: bool | None = None,
        behind: bool | None = None,
    ) -> None:
        with self._lock:
            old = self._status
            new = old
            if up is not None and (up != old.up or not up):
                keep_since = not up and not old.up and old.down_since is not None
                new = replace(
                    new,
                    up=up,
                    reason=reason if not up else "",
                    down_since=None if up else (old.down_since if keep_since else since),
                )
            if current_at is not None:
                new = replace(new, current_at=current_at)
            if last_known_good is not None:
                new = replace(new, last_known_good=last_known_good)
            if behind is not None:
                new = replace(new, behind=behind)
            self._status = new
        if new.up != old.up:
            for listener in list(self._listeners):
                try:
                    listener(new)
                except Exception:
                    log.exception("flag source status listener failed")


def when(seconds: float) -> str:
    """Wall-clock seconds as an ISO 8601 UTC timestamp, to the second."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
