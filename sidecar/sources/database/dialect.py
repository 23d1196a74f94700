"""What differs between the databases a flag database runs on: connecting, the placeholder
style, how a write transaction is serialised, and how a reader learns cheaply that something
changed. The SQL itself (database.py, migrations/) is written once, with `?` placeholders."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Cursor(Protocol):
    """The part of a DB-API cursor the flag database uses (sqlite3's and psycopg's)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ...) -> Any: ...

    def close(self) -> None: ...


class Pool(Protocol):
    """A connection pool (psycopg_pool.ConnectionPool's part the flag database uses)."""

    def connection(self) -> AbstractContextManager[Any]: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


class Dialect(Protocol):
    """One database engine (sqlite.py; postgresql.py when psycopg is installed)."""

    @property
    def name(self) -> str:
        """The migrations directory (migrations/<name>/) and what messages call it."""
        ...

    @property
    def origin(self) -> str:
        """Where the data is, as logs and problems name it (a path; a URI without its password)."""
        ...

    def connect(self, create: bool = True) -> Connection:
        """A new connection in autocommit mode (transactions are begun explicitly). OSError. Without
        `create`, a database that does not exist is an error, not a new empty one."""
        ...

    @property
    def pooled(self) -> bool:
        """Whether calls take connections from a pool (`open_pool`) rather than share one."""
        ...

    def open_pool(self) -> Pool:
        """A pool of connections like `connect`'s (only when `pooled`)."""
        ...

    def replaced(self) -> bool:
        """Whether the database the last connection opened is no longer the one at its address (a
        file replaced by a restore): the connection should be dropped. OSError when it is gone."""
        ...

    def sql(self, text: str) -> str:
        """`text` with `?` placeholders in this database's style."""
        ...

    def begin_write(self, connection: Connection) -> None:
        """Begin a transaction that holds the write lock until it ends: writers take turns, so
        what a writer read inside it is still current when it commits."""
        ...

    def begin_read(self, connection: Connection) -> None:
        """Begin a transaction whose reads all see one committed state."""
        ...

    def change_counter(self, connection: Connection) -> int:
        """A number that changes when another connection commits (cheap: polled)."""
        ...

    @property
    def poll_seconds(self) -> float | None:
        """How often a follower looks when nothing is pushed: None for the source's own interval
        (a database without notifications), longer for one that pushes (a safety net)."""
        ...

    def listen(self, connection: Connection) -> None:
        """Subscribe `connection` to write notifications (nothing for a database without them)."""
        ...

    def wait(self, connection: Connection, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a notification; False at once when there are none."""
        ...

    def interrupt(self, connection: Connection) -> None:
        """End a `wait` on `connection` running in another thread, at once (it then fails)."""
        ...

    def notify(self, connection: Connection, payload: str) -> None:
        """Inside a write transaction: tell the listeners at commit (nothing without notifications)."""
        ...

    def is_unavailable(self, error: Exception) -> bool:
        """Whether `error` means the database cannot be reached or opened (not a bug of ours)."""
        ...
