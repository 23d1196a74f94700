"""A fault-injecting file layer for the spool: its disk can fill up or turn read-only on demand.

The spool reaches the disk through its module's `open` and `os`; DiskFaults replaces those two
names in sidecar.events.spool, and Path.write_text and Path.unlink for paths under `root`
(nothing else in the process is affected), so a test can make the disk fail for a while and
recover, as ENOSPC or EROFS would, without mount privileges.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sidecar.events import spool as spool_module

FULL = "full"  # writes fail with ENOSPC (after half of the first one landed); reads, deletes work
READ_ONLY = "read_only"  # every change fails with EROFS: opening to write, write, truncate, rename, unlink


class DiskFaults:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.mode: str | None = None
        self.failures = 0  # operations refused so far
        self._lock = threading.Lock()
        monkeypatch.setattr(spool_module, "open", self._open, raising=False)
        monkeypatch.setattr(spool_module, "os", _Os(self))
        faults, root = self, root.resolve()
        write_text, unlink = Path.write_text, Path.unlink

        def faulty_write_text(path: Path, data: str, *args: Any, **kwargs: Any) -> int:
            if path.resolve().is_relative_to(root):
                faults.refuse(READ_ONLY, FULL)
            return write_text(path, data, *args, **kwargs)

        def faulty_unlink(path: Path, missing_ok: bool = False) -> None:
            if path.resolve().is_relative_to(root):
                faults.refuse(READ_ONLY)
            unlink(path, missing_ok)

        monkeypatch.setattr(Path, "write_text", faulty_write_text)
        monkeypatch.setattr(Path, "unlink", faulty_unlink)

    def set(self, mode: str | None) -> None:
        self.mode = mode

    def refuse(self, *modes: str) -> None:
        """Raise the fault's OSError if the disk is in one of `modes`."""
        mode = self.mode
        if mode is not None and mode in modes:
            with self._lock:
                self.failures += 1
            code = errno.ENOSPC if mode == FULL else errno.EROFS
            raise OSError(code, os.strerror(code))

    def _open(self, path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            self.refuse(READ_ONLY)
        return _File(self, open(path, mode, *args, **kwargs))


class _File:
    """A file whose writes and truncations go through the faults."""

    def __init__(self, faults: DiskFaults, f: Any) -> None:
        self._faults = faults
        self._f = f
        self._partial = False

    def write(self, data: Any) -> int:
        self._faults.refuse(READ_ONLY)
        if self._faults.mode == FULL:
            # A text file (the cursor) is buffered: a full disk fails it whole, on flush.
            if not self._partial and len(data) > 1 and not isinstance(data, str):
                # The disk fills up mid-record: half lands, the rest fails.
                self._partial = True
                return self._f.write(data[: len(data) // 2])
            self._faults.refuse(FULL)
        return self._f.write(data)

    def truncate(self, size: int | None = None) -> int:
        self._faults.refuse(READ_ONLY)
        return self._f.truncate(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _File:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


class _Os(ModuleType):
    """The os module, but renames, deletes and fsyncs go through the faults."""

    def __init__(self, faults: DiskFaults) -> None:
        super().__init__("os")
        self._faults = faults

    def replace(self, src: Any, dst: Any) -> None:
        self._faults.refuse(READ_ONLY)
        os.replace(src, dst)

    def unlink(self, path: Any) -> None:
        self._faults.refuse(READ_ONLY)
        os.unlink(path)

    def fsync(self, fd: int) -> None:
        self._faults.refuse(READ_ONLY, FULL)
        os.fsync(fd)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)
