"""The flags and segments of an entry source (a database: sidecar.sources.entries), held in memory
under flag_cache_key / segment_cache_key, each with the time it was fetched, and the thread that
keeps them current.

- A push (the source's `changed`: a NOTIFY, SQLite's data_version) invalidates at once: the store
  asks the source, on the watcher's thread, for what changed after the revision it holds, and only
  those entries are fetched again (the revalidator takes over if that fails).
- Past the TTL (--cache-ttl) since the set was last validated, the revalidator asks the same,
  conditional on the revision: an unchanged set costs the source one small query, and only renews
  the validation time (the set's age, in /readyz and the metrics).
- The old entries keep serving meanwhile, and while the source is down: evaluation reads the
  store's compiled snapshot, never this cache, and takes no lock that I/O holds; the source is
  read only on the watcher's thread and the revalidator's.

Why not a cachetools TTLCache (the evaluation cache's): it drops an entry once its TTL passes,
and here an expired entry must go on serving until the source says what replaces it, which during
an outage may be hours. The TTL is a revalidation schedule, not an eviction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ..sources.document import Document
from ..sources.entries import Entry, EntryChanges, entries_document
from .cache_keys import flag_cache_key, segment_cache_key

log = logging.getLogger(__name__)

# The shortest wait between two revalidations (a TTL of 0 must not spin).
MIN_WAIT: Final = 0.1


def cache_key(entry: Entry) -> str:
    return flag_cache_key(entry.key) if entry.kind == "flag" else segment_cache_key(entry.key)


@dataclass(frozen=True, slots=True)
class CachedEntry:
    entry: Entry
    fetched_at: float  # wall-clock seconds


class SourceCache:
    """The entries and the revision they are; written by the revalidator thread only (each change
    replaces the mapping in one assignment, so a reader sees one state)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: Mapping[str, CachedEntry] = MappingProxyType({})
        self.revision: str | None = None  # None: nothing held yet
        self.validated_at: float | None = None  # wall clock, when the source last vouched for it

    @property
    def entries(self) -> Mapping[str, CachedEntry]:
        """flag:<key> / segment:<key> -> the entry and its fetch time (read-only)."""
        return self._entries

    def apply(self, changes: EntryChanges) -> bool:
        """Take what the source answered; True when an entry changed (the set is to be rebuilt)."""
        now = self._clock()
        self.revision, self.validated_at = changes.revision, now
        if changes.unchanged:
            return False
        entries = {} if changes.whole else dict(self._entries)
        for entry in changes.changed:
            entries[cache_key(entry)] = CachedEntry(entry, now)
        for kind, key in changes.removed:
            entries.pop(flag_cache_key(key) if kind == "flag" else segment_cache_key(key), None)
        self._entries = MappingProxyType(entries)
        return True

    def due_in(self) -> float:
        """Seconds until the set is to be revalidated (0: now; nothing held is due at once)."""
        if self.validated_at is None:
            return 0.0
        return max(0.0, self.validated_at + self.ttl - self._clock())

    def document(self, origin: str) -> Document:
        """The held set as one flag document, flags and segments by key."""
        held = sorted(self._entries.values(), key=lambda cached: cached.entry.key)
        flags = [cached.entry for cached in held if cached.entry.kind == "flag"]
        segments = [cached.entry for cached in held if cached.entry.kind == "segment"]
        return entries_document(
            (entry.text for entry in flags),
            (entry.text for entry in segments),
            {entry.key: entry.version for entry in flags},
            self.revision or "",
            origin,
        )


class Revalidator:
    """The cache's thread (`flag-cache-revalidate`): `refresh` when invalidated or due, and again,
    backing off, after a failure (`refresh` reports failures itself; OSError is one)."""

    def __init__(self, cache: SourceCache, refresh: Callable[[], None]) -> None:
        self._cache = cache
        self._refresh = refresh
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flag-cache-revalidate", daemon=True)
        self._thread.start()

    def invalidate(self) -> None:
        """Look now (never blocks): a refresh on a push failed."""
        self._wake.set()

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while True:
            # After a failure: doubling from a second, up to the TTL.
            wait = min(self._cache.ttl, 2.0 ** (failures - 1)) if failures else self._cache.due_in()
            self._wake.wait(max(MIN_WAIT, wait))
            if self._stopped.is_set():
                return
            self._wake.clear()
            try:
                self._refresh()
                failures = 0
            except OSError:
                failures += 1
            except Exception:  # the thread must outlive any bug
                log.exception("flag cache revalidation failed")
                failures += 1
