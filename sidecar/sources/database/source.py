"""A flag set in a database as a source: the set's flags and segments as one JSON document, with
the database's own flag versions and the set's revision, and a watcher that notices a commit by
any process at once.

The watcher polls the dialect's change counter (SQLite's `PRAGMA data_version`: no table read) on
a short interval, or, where the database pushes (PostgreSQL's LISTEN/NOTIFY), waits for a
notification and polls only as a safety net; only when the counter moved does it read the set's
revision (one row), and only when that moved is the store told to fetch. A write to another flag
set costs the followers of this one that one row. bench/notes.md ("SQLite source") has the
measurements behind the interval.

A database that cannot be opened or read is reported once (lost) and watched for its return
(regained, then a change if the set moved meanwhile); the store keeps serving the last good set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final, TypeVar

from ..document import Document, SourceListener
from ..entries import Entry, EntryChanges, EntryKind, entries_document
from .database import FlagDatabase, SetChanges, SetContent, StoredItem

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 0.025
_T = TypeVar("_T")


def set_document(content: SetContent, origin: str) -> Document:
    """The set as a flag document (JSON bytes in the flag file's shape), built from the stored
    definitions' own JSON text; `versions` are the database's."""
    return entries_document(
        (item.text for item in content.flags),
        (item.text for item in content.segments),
        {item.key: item.version for item in content.flags},
        str(content.revision),
        origin,
    )


def _entries(kind: EntryKind, items: tuple[StoredItem, ...]) -> tuple[Entry, ...]:
    return tuple(Entry(kind, item.key, item.version, item.text) for item in items)


class DatabaseSource:
    """One flag set of a FlagDatabase (which this source owns: its connection is its own, so that
    the change counter sees the commits of every other connection, admin writes included)."""

    def __init__(self, database: FlagDatabase, flag_set: str, poll_interval: float = POLL_SECONDS) -> None:
        self.database = database
        self.flag_set = flag_set
        self.poll_interval = poll_interval
        self._migrated = False
        self._revision: int | None = None  # of the last document fetched
        self._listener: SourceListener | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._down: str | None = None  # why the database cannot be read, until it can again

    @property
    def origin(self) -> str:
        return f"{self.database.origin} (flag set {self.flag_set!r})"

    def fetch(self) -> Document:
        """The set now; the schema is brought up to date first (once). Raises OSError."""
        content = self._reading(lambda: self.database.read(self.flag_set))
        self._revision = content.revision
        return set_document(content, self.origin)

    def entries(self) -> EntryChanges:
        """The set now, as entries (EntrySource); the schema is brought up to date first (once)."""
        content = self._reading(lambda: self.database.read(self.flag_set))
        self._revision = content.revision
        return EntryChanges(
            str(content.revision),
            _entries("flag", content.flags) + _entries("segment", content.segments),
            whole=True,
        )

    def changes_since(self, revision: str) -> EntryChanges:
        """What the writes after `revision` touched (EntrySource): one small query when nothing."""
        try:
            since = int(revision)
        except ValueError:  # not one of ours (a copy from another source): read it whole
            return self.entries()
        changes: SetChanges = self._reading(lambda: self.database.changes(self.flag_set, since))
        self._revision = changes.revision
        return EntryChanges(
            str(changes.revision),
            _entries("flag", changes.flags) + _entries("segment", changes.segments),
            changes.removed,
            changes.whole,
        )

    def _reading(self, read: Callable[[], _T]) -> _T:
        try:
            if not self._migrated:
                self.database.migrate()
                self._migrated = True
                self.database.create = False
            return read()
        except Exception as error:
            self.database.reset()
            if self.database.dialect.is_unavailable(error):
                raise OSError(str(error)) from error  # the store names the source
            raise

    def watch(self, listener: SourceListener) -> None:
        self._listener = listener
        self._thread = threading.Thread(target=self._run, name="flag-db-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        self.database.stop_waiting()  # a wait for a notification ends at once
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.database.close()  # what the watcher may have opened again meanwhile

    def _run(self) -> None:
        counter: tuple[int, int] | None = None
        interval = self.database.dialect.poll_seconds or self.poll_interval
        while not self._stopped.is_set():
            try:
                if not self.database.wait_for_change(interval) and self._stopped.wait(interval):
                    return
                now = self.database.change_counter()
                if now == counter:
                    self._confirm()
                    continue
                counter = now
                revision = self.database.set_revision(self.flag_set)
            except Exception as error:
                if self._stopped.is_set():  # closing: the wait was interrupted on purpose
                    return
                self.database.reset()
                counter = None
                if not self.database.dialect.is_unavailable(error):
                    log.exception("flag database watcher failed")
                self._lost(error)
                self._stopped.wait(interval)
                continue
            self._regained()
            if revision == self._revision:
                self._confirm()
            elif self._listener is not None:
                try:
                    self._listener.changed()
                except Exception:  # the watcher must outlive any listener bug
                    log.exception("flag database change handler failed")

    def _confirm(self) -> None:
        """The database vouches that the set is still the revision last fetched (the store's set
        is current, its age starts over)."""
        if self._listener is not None and self._revision is not None:
            self._listener.confirmed(str(self._revision))

    def _lost(self, error: Exception) -> None:
        if self._down is None:
            self._down = str(error) or type(error).__name__
            if self._listener is not None:
                self._listener.lost("flag_database_unavailable", f"cannot read {self.origin} ({self._down})")

    def _regained(self) -> None:
        if self._down is not None:
            self._down = None
            if self._listener is not None:
                self._listener.regained(
                    "flag_database_available",
                    f"{self.origin} can be read again; it is reloaded if the set changed",
                )
