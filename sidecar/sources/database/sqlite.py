"""SQLite, the embedded default: one file, no server.

WAL journal mode, so that readers (every sidecar following the file) never wait for the writer
nor block it; `BEGIN IMMEDIATE` takes the write lock at the start of a write, so that two admins'
writes take turns instead of failing at commit; a busy timeout, so a writer waits for the other
rather than failing at once. `PRAGMA data_version` is what followers poll: it changes when
another connection commits, and reading it touches no table (bench/notes.md measures it). A
follower also checks that the file is still the one it opened (one stat): a file restored by
copying another over it is reopened, and a deleted one is reported rather than re-created empty.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import cast
from urllib.parse import quote

from .dialect import Connection, Pool

BUSY_TIMEOUT_SECONDS = 10.0


class SqliteDialect:
    name = "sqlite"

    def __init__(self, path: str | Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file last opened

    @property
    def origin(self) -> str:
        return f"sqlite:///{self.path.absolute()}".replace("////", "///")

    def connect(self, create: bool = True) -> Connection:
        # mode=rw: a follower whose file was deleted must not quietly make a new, empty one.
        target = f"file:{quote(str(self.path.absolute()))}{'' if create else '?mode=rw'}"
        try:
            connection = sqlite3.connect(
                target, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False, uri=True
            )
            self._identity = self._stat()
        except sqlite3.Error as error:
            raise OSError(f"cannot open {self.path}: {error}") from None
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA synchronous = FULL")  # an acknowledged admin write survives a crash
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                connection.execute("PRAGMA journal_mode = WAL")  # persistent: set once per file
        except sqlite3.Error as error:
            connection.close()
            raise OSError(f"cannot use {self.path} as a database: {error}") from None
        return cast(Connection, connection)

    def _stat(self) -> tuple[int, int]:
        stat = os.stat(self.path)  # FileNotFoundError, an OSError, when it is gone
        return stat.st_dev, stat.st_ino

    # One connection: `PRAGMA data_version` counts the commits of *other* connections, and writes
    # take turns on the file anyway.
    pooled = False

    def open_pool(self) -> Pool:
        raise NotImplementedError("SQLite uses one connection")

    def replaced(self) -> bool:
        return self._identity is not None and self._stat() != self._identity

    def sql(self, text: str) -> str:
        return text

    def begin_write(self, connection: Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")

    def begin_read(self, connection: Connection) -> None:
        connection.execute("BEGIN")  # deferred: the first read takes the WAL snapshot

    def change_counter(self, connection: Connection) -> int:
        return int(connection.execute("PRAGMA data_version").fetchone()[0])

    # No cross-process notification in SQLite: followers poll data_version.
    poll_seconds = None

    def listen(self, connection: Connection) -> None:
        pass

    def wait(self, connection: Connection, timeout: float) -> bool:
        return False

    def notify(self, connection: Connection, payload: str) -> None:
        pass

    def interrupt(self, connection: Connection) -> None:
        pass

    def is_unavailable(self, error: Exception) -> bool:
        # Locked past the busy timeout, an I/O error, a file that is no database; not an
        # IntegrityError or ProgrammingError (also DatabaseErrors), which would be bugs of ours.
        return isinstance(error, sqlite3.OperationalError | OSError) or type(error) is sqlite3.DatabaseError
