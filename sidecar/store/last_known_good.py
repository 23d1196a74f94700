"""The last-known-good copy of a remote source's document, kept in the state directory.

After every document from a remote source (https://, a database, another sidecar) that the store
applied, its bytes are written to `last-known-good.flags` in --state-dir with their format,
revision, origin, the source's own versions and the time, atomically (state_files). When the
source cannot give a set at start, the store serves this copy instead of refusing to start, says
so (log, /readyz, health, metrics), and catches up when the source answers. A file source needs
none: the file is its own copy.

The file is one JSON header line, then the document's bytes exactly as the source sent them (the
header holds their size and SHA-1). A copy of another origin (the --source changed) is not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..sources import FORMATS, Document
from .state_files import write_atomically

log = logging.getLogger(__name__)

LAST_KNOWN_GOOD_FILE = "last-known-good.flags"
_FORMAT = 1


@dataclass(frozen=True, slots=True)
class SavedDocument:
    document: Document
    saved_at: float  # wall-clock seconds


class LastKnownGood:
    def __init__(self, state_dir: Path | None) -> None:
        self.state_dir = state_dir
        self._saved_revision: str | None = None

    @property
    def path(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / LAST_KNOWN_GOOD_FILE

    def save(self, document: Document) -> None:
        """Keep `document` (applied just now) as the copy. A failed write is logged, never raised:
        the set is served either way."""
        if self.state_dir is None or document.revision == self._saved_revision:
            return
        header = {
            "format": _FORMAT,
            "origin": document.origin,
            "revision": document.revision,
            "documentFormat": document.format,
            "versions": None if document.versions is None else dict(document.versions),
            "savedAt": time.time(),
            "size": len(document.data),
            "sha1": hashlib.sha1(document.data).hexdigest(),
        }
        try:
            write_atomically(
                self.state_dir, LAST_KNOWN_GOOD_FILE, json.dumps(header).encode() + b"\n" + document.data
            )
        except OSError as error:
            log.error(
                "cannot save the last known good flag set to %s: %s; a restart while the source is "
                "down would serve an older copy, or none",
                self.path,
                error.strerror or error,
                extra={"event": "last_known_good_not_saved"},
            )
            return
        self._saved_revision = document.revision

    def load(self, origin: str) -> SavedDocument | None:
        """The saved copy of `origin`'s document, or None (no copy, another origin's, or damaged:
        logged)."""
        path = self.path
        if path is None or not path.exists():
            return None
        try:
            head, _, data = path.read_bytes().partition(b"\n")
            header = json.loads(head)
            if header.get("format") != _FORMAT:
                raise ValueError(f"unknown format {header.get('format')!r}")
            if header["size"] != len(data) or header["sha1"] != hashlib.sha1(data).hexdigest():
                raise ValueError("its document does not match its size and checksum")
            if header["documentFormat"] not in FORMATS:
                raise ValueError(f"unknown document format {header['documentFormat']!r}")
            versions = header["versions"]
            document = Document(
                data,
                header["documentFormat"],
                str(header["revision"]),
                str(header["origin"]),
                None if versions is None else {str(k): int(v) for k, v in versions.items()},
            )
            saved_at = float(header["savedAt"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.error(
                "cannot use the last known good copy %s: %s",
                path,
                error,
                extra={"event": "last_known_good_unreadable"},
            )
            return None
        if document.origin != origin:
            log.warning(
                "the last known good copy %s is of %s, not of %s: not used",
                path,
                document.origin,
                origin,
                extra={"event": "last_known_good_other_origin"},
            )
            return None
        self._saved_revision = document.revision
        return SavedDocument(document, saved_at)
