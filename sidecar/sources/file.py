"""file://: a flag file (YAML or JSON) as the source of truth, watched for edits.

Edits are seen through filesystem events on the file's directory (watchdog), which also catches the
symlink swap Kubernetes does for a mounted ConfigMap (`..data` is renamed over), with a periodic
stat as a safety net where events are unavailable. A change is reported only when the bytes differ.

The file is read again only when its stat signature (device, inode, size, modification and change
times) differs from the last one seen, so an idle sidecar costs one stat per poll, whatever the
file's size. File timestamps are coarse (a kernel tick), so a same-size rewrite within the tick of
the last look keeps the signature: a file modified within RACY_SECONDS of that look is read and
hashed anyway until it has been quiet for longer ("racily clean", as git calls the same problem).

A file written in place is judged (applied or rejected) only once it has stopped changing: two
reads SETTLE_SECONDS apart must agree, and an empty file, usually one truncated and not yet filled,
gets EMPTY_GRACE_SECONDS first. So a writer caught mid-write causes no rejection (and no
rejected_reloads count); an empty file that stays empty is still rejected. A file renamed into
place (an atomic replace: a temporary file written whole, then renamed over the flag file, or the
`..data` link a ConfigMap update renames over) is read at once, with no settle wait: the rename is
the writer saying it is done, and a new inode under the path proves the rename is what changed it
(an in-place write keeps the inode, and takes the settle wait). A deleted file is
reported once (the store logs it: it still serves the last good set), and so is its return.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .document import Document, SourceListener, format_of_name

log = logging.getLogger(__name__)

RACY_SECONDS = 2.0
# A changed file is judged only once two reads this far apart agree (same bytes, same stat), so a
# file caught while it is being written is not rejected for being half there. The watcher also
# waits this long after an event before it looks, so that a burst of events (write, chmod,
# rename) makes one check: an edit shows after about twice this.
SETTLE_SECONDS = 0.025
# An empty file is most often one being written (truncated, not filled yet): it gets this long to
# fill before it is judged (and rejected, if it stays empty).
EMPTY_GRACE_SECONDS = 1.0
# A file that keeps changing is judged as it is after this long.
MAX_SETTLE_SECONDS = 5.0

Signature = tuple[int, int, int, int, int]


def _signature(stat: os.stat_result) -> Signature:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _settled(stat: os.stat_result, looked_at_ns: int) -> bool:
    """Whether the file was last modified long enough before `looked_at_ns` for its signature to
    vouch for its bytes (a clock that went back, or a future timestamp, reads as not settled)."""
    return looked_at_ns - max(stat.st_mtime_ns, stat.st_ctime_ns) > RACY_SECONDS * 1e9


def _sha1_of_file(path: Path) -> str:
    """The file's SHA-1, read 64 KiB at a time.

    Not read whole: this runs every poll interval on the watcher thread, and a buffer the size of a
    large file would stay in that thread's malloc arena (RSS, see BENCHMARKS.md). Not with
    hashlib.file_digest either: its 256 KiB buffer costs more than a 100-flag file read whole.
    """
    digest = hashlib.sha1()
    buffer = bytearray(1 << 16)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as file:
        while size := file.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def read_document(path: str | os.PathLike[str]) -> Document:
    """The file's document, read once (no watching). Raises OSError."""
    return _document(Path(path).read_bytes(), str(path))


def _document(data: bytes, origin: str) -> Document:
    return Document(data, format_of_name(origin), hashlib.sha1(data).hexdigest(), origin)


def _replacing_paths(path: Path) -> frozenset[str]:
    """The paths a rename onto which replaces the file's content whole: the file itself and, for a
    file that is a link through a link beside it (a ConfigMap's flags.yaml -> ..data/flags.yaml),
    that link (..data, which an update renames over)."""
    absolute = path.absolute()
    paths = {str(absolute)}
    try:
        target = Path(os.readlink(absolute))
    except OSError:  # not a link
        return frozenset(paths)
    if not target.is_absolute() and len(target.parts) > 1:
        paths.add(str(absolute.parent / target.parts[0]))
    return frozenset(paths)


class _WakeOnChange(FileSystemEventHandler):
    """Wakes the watcher on any event in the directory that may change a file, and says so
    (`replaced`) when one is a rename onto the file (or the link it goes through). Opening and
    closing without a write do not wake it: reading the flag file makes both, and a watcher woken
    by its own reads kept reading the file about ten times a second."""

    READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})

    def __init__(self, wake: threading.Event, replaced: threading.Event, replacing: frozenset[str]) -> None:
        self._wake = wake
        self._replaced = replaced
        self._replacing = replacing

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in self.READ_ONLY_EVENTS:
            return
        if event.event_type == "moved" and os.fsdecode(event.dest_path) in self._replacing:
            self._replaced.set()
        self._wake.set()


class FileSource:
    """Reads a flag file and tells a listener when its content may have changed."""

    def __init__(self, path: str | os.PathLike[str], poll_interval: float = 1.0) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._digest: str | None = None
        # The stat signature the bytes behind _digest had, and whether it can be trusted alone.
        self._signature: Signature | None = None
        self._settled = False
        self._listener: SourceListener | None = None
        self._wake = threading.Event()
        self._replaced = threading.Event()  # a rename onto the file was seen since the last look
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None
        # The watcher's settled read, for the fetch() its change handler makes.
        self._settled_read: tuple[os.stat_result, bytes] | None = None
        self._missing = False  # the file was found deleted, and has not come back yet
        self._read_error: str | None = None  # why the file could not be read, until it can again

    @property
    def origin(self) -> str:
        return str(self.path)

    def fetch(self) -> Document:
        """The file's document now (on a watcher reload: the bytes it saw settle). Raises OSError."""
        settled, self._settled_read = self._settled_read, None
        stat, data = settled if settled is not None else self._read()
        document = _document(data, self.origin)
        self._digest = document.revision
        self._signature, self._settled = _signature(stat), _settled(stat, time.time_ns())
        return document

    def _read(self) -> tuple[os.stat_result, bytes]:
        stat = self.path.stat()  # before reading: a write after it changes the signature or is racy
        return stat, self.path.read_bytes()

    def read_replaced(self) -> tuple[os.stat_result, bytes]:
        """The file's stat and bytes after a rename onto it: read at once when the path holds a new
        inode that did not change while it was read (the renamed file, written whole before the
        rename); else as a file written in place (read_settled). Raises OSError."""
        stat, data = self._read()
        renamed = self._signature is not None and stat.st_ino != self._signature[1]
        if renamed and _signature(self.path.stat()) == _signature(stat):
            return stat, data
        return self.read_settled()

    def read_settled(self) -> tuple[os.stat_result, bytes]:
        """The file's stat and bytes once it has stopped changing: two reads SETTLE_SECONDS apart
        that agree. An empty file gets EMPTY_GRACE_SECONDS to be filled; after MAX_SETTLE_SECONDS
        the file is taken as it is. Raises OSError."""
        started = time.monotonic()
        stat, data = self._read()
        while not self._stopped.wait(SETTLE_SECONDS):
            again, now = self._read()
            waited = time.monotonic() - started
            if now == data and _signature(again) == _signature(stat):
                if now.strip() or waited >= EMPTY_GRACE_SECONDS:
                    return again, now
            elif waited >= MAX_SETTLE_SECONDS:
                return again, now
            stat, data = again, now
        return stat, data  # closing: nobody will judge it

    def changed(self) -> bool:
        """Whether the file's bytes differ from the last load (a missing file counts as unchanged).
        Reads the file only when its stat signature changed or is too recent to vouch for it."""
        try:
            stat = self.path.stat()
            self._found()
            signature = _signature(stat)
            if signature == self._signature and self._settled:
                return False
            looked_at = time.time_ns()
            digest = _sha1_of_file(self.path)
            self._readable()
            if digest != self._digest:
                return True
        except FileNotFoundError:
            self._gone()
            return False
        except OSError as error:  # permission denied, an I/O error: said once, retried every poll
            self._unreadable(error)
            return False
        # The same bytes under a new (or still racy) signature: remember it, so the next poll is a stat.
        self._signature, self._settled = signature, _settled(stat, looked_at)
        return False

    def _unreadable(self, error: OSError) -> None:
        if self._read_error is None:
            self._read_error = error.strerror or type(error).__name__
            if self._listener is not None:
                self._listener.lost(
                    "flag_file_unreadable", f"flag file {self.path} cannot be read ({self._read_error})"
                )

    def _readable(self) -> None:
        if self._read_error is not None:
            self._read_error = None
            if self._listener is not None:
                self._listener.regained(
                    "flag_file_readable",
                    f"flag file {self.path} can be read again; it is reloaded if its content changed",
                )

    def _gone(self) -> None:
        if not self._missing:
            self._missing = True
            if self._listener is not None:
                self._listener.lost("flag_file_missing", f"flag file {self.path} deleted")

    def _found(self) -> None:
        if self._missing:
            self._missing = False
            if self._listener is not None:
                self._listener.regained(
                    "flag_file_back", f"flag file {self.path} is back; it is reloaded if its content changed"
                )

    @property
    def missing(self) -> bool:
        """Whether the watcher last found the file deleted (the last good set is still served)."""
        return self._missing

    def watch(self, listener: SourceListener) -> None:
        """Tell `listener` (on a background thread) whenever the file's content changes, and when
        it is deleted and comes back."""
        self._listener = listener
        self._start_observer()
        self._thread = threading.Thread(target=self._run, name="flag-file-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._replaced.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _start_observer(self) -> None:
        try:
            observer = Observer()
            # The directory, not the file: editors and Kubernetes replace files rather than write them.
            handler = _WakeOnChange(self._wake, self._replaced, _replacing_paths(self.path))
            observer.schedule(handler, str(self.path.absolute().parent), recursive=False)
            observer.daemon = True
            observer.start()
            self._observer = observer
        except OSError as error:
            log.warning(
                "cannot watch %s for events (%s); polling every %.1fs", self.path, error, self.poll_interval
            )

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.poll_interval)
            if self._stopped.is_set():
                return
            replaced = False
            if self._wake.is_set():
                # Let a burst of events (write, chmod, rename) end, unless it ends in a rename onto
                # the file: an atomic replace is looked at as soon as the rename is seen.
                self._replaced.wait(SETTLE_SECONDS)
                if self._stopped.is_set():
                    return
                replaced = self._replaced.is_set()
                self._replaced.clear()
                self._wake.clear()
                if replaced and not self.changed():
                    # A rename already loaded (watchdog can hand its event over up to 0.5 s late):
                    # this burst is a new write under way, waited out as any other.
                    replaced = False
                    self._stopped.wait(SETTLE_SECONDS)
            if not self.changed() or self._listener is None:
                continue
            try:
                self._settled_read = self.read_replaced() if replaced else self.read_settled()
            except OSError:
                self._settled_read = None  # gone again: fetch() reads, and the store reports it
            if self._stopped.is_set():
                return
            try:
                self._listener.changed()
            except Exception:  # the watcher must outlive any listener bug
                log.exception("flag file change handler failed")
            finally:
                self._settled_read = None
