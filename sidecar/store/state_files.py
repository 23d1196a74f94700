"""Files in the state directory (--state-dir), written so that a crash leaves the old file or the new
one, never a mix: a new file beside it, fsync'ed, renamed over it, and the directory fsync'ed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(directory: Path, name: str, data: bytes) -> None:
    """Replace `directory/name` with `data`. Raises OSError (the old file is then untouched)."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)  # the rename itself survives a power loss
    finally:
        os.close(handle)
