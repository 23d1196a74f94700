"""Flag versions: a flag's version goes up by one each time its definition changes, and never back.

The table (flag key -> fingerprint of the definition, version) is what the counting needs. It
keeps removed flags, so a flag that comes back gets a new version, not an old one. With a state
directory (--state-dir) the table is written to `flag-versions.json` there after every applied
change (a new file, fsync'ed, renamed over the old one: a crash leaves the old table or the new
one), and read back at start, so a restart neither resets versions to 1 nor serves an old number
for a new definition. Without one it lives in memory, and versions count from 1 in each process.

Versions given by the document win: a flag's own `version: N` field (the compiler's business), and
the versions a source keeps itself (Document.versions, a database's, say).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ..engine import FlagSet
from ..engine.compiler import VersionOf
from .state_files import write_atomically

log = logging.getLogger(__name__)

STATE_FILE = "flag-versions.json"
LOCK_FILE = "flag-versions.lock"
_FORMAT = 1


class StateDirError(OSError):
    """The state directory cannot be used (the message names it)."""


class StateDirLockedError(StateDirError):
    """Another process keeps its versions in this state directory."""


class VersionTable:
    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir
        self._known: dict[str, tuple[str, int]] = {}  # flag key -> (fingerprint, version)
        self._lock: IO[bytes] | None = None

    @property
    def path(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / STATE_FILE

    def open(self) -> None:
        """Take the state directory (created if need be) and read the table saved there. Raises
        StateDirError (StateDirLockedError when another process holds it)."""
        if self.state_dir is None or self._lock is not None:
            return
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            handle = open(self.state_dir / LOCK_FILE, "a+b")  # noqa: SIM115 - held while the store lives
        except OSError as error:
            raise StateDirError(
                f"cannot use state directory {self.state_dir}: {error.strerror or error}"
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            # Two writers would each save their own table, and the last one saved would win.
            raise StateDirLockedError(
                f"state directory {self.state_dir} is in use by another process"
            ) from error
        self._lock = handle
        try:
            self._known = self._read()
        except OSError as error:
            self.close()
            raise StateDirError(f"cannot read {self.path}: {error.strerror or error}") from None

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _read(self) -> dict[str, tuple[str, int]]:
        path = self.state_dir / STATE_FILE if self.state_dir is not None else None
        if path is None or not path.exists():
            return {}
        try:
            saved = json.loads(path.read_bytes())
            if saved.get("format") != _FORMAT:
                raise ValueError(f"unknown format {saved.get('format')!r}")
            return {str(key): _entry(value) for key, value in saved["flags"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            # Atomic writes make this someone else's doing. Serving matters more than the numbers:
            # keep the file for a look, and count afresh.
            aside = path.with_name(path.name + ".unreadable")
            os.replace(path, aside)
            log.error(
                "cannot read the flag versions in %s (%s): moved it to %s; versions count from 1 again",
                path,
                error,
                aside,
                extra={"event": "flag_versions_unreadable"},
            )
            return {}

    def version_of(self, supplied: Mapping[str, int] | None = None) -> VersionOf:
        """Versions for the compiler: the source's own, or the saved one while the definition is the
        same, or one more than the saved one when it changed (1 for a flag never seen)."""
        known = self._known

        def version_of(key: str, fingerprint: str) -> int:
            if supplied is not None and key in supplied:
                return supplied[key]
            entry = known.get(key)
            if entry is None:
                return 1
            return entry[1] if entry[0] == fingerprint else entry[1] + 1

        return version_of

    def applied(self, flag_set: FlagSet) -> None:
        """Remember the versions of an applied set (and save them if they changed). A failed save is
        logged, never raised: the set is served either way."""
        changed = False
        for key, flag in flag_set.flags.items():
            entry = (flag.fingerprint, flag.version)
            if self._known.get(key) != entry:
                self._known[key] = entry
                changed = True
        if changed and self.state_dir is not None:
            try:
                self._write()
            except OSError as error:
                log.error(
                    "cannot save the flag versions to %s: %s; after a restart they would go back to "
                    "the last saved ones",
                    self.path,
                    error,
                    extra={"event": "flag_versions_not_saved"},
                )

    def _write(self) -> None:
        assert self.state_dir is not None
        body = {
            "format": _FORMAT,
            "flags": {
                key: {"fingerprint": fp, "version": version} for key, (fp, version) in self._known.items()
            },
        }
        write_atomically(self.state_dir, STATE_FILE, json.dumps(body, sort_keys=True).encode())

    def __len__(self) -> int:
        return len(self._known)


def _entry(value: Any) -> tuple[str, int]:
    fingerprint, version = value["fingerprint"], value["version"]
    if not isinstance(fingerprint, str) or not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"bad entry {value!r}")
    if version < 1:
        raise ValueError(f"bad version {version!r}")
    return fingerprint, version
