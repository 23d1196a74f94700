"""PostgreSQL, for fleets: the same schema and SQL as SQLite (migrations/postgresql/), through
psycopg 3 (the `postgresql` extra, imported when a PostgreSQL database is opened).

Writers take turns on a transaction-scoped advisory lock, so that a write validates against the
state it commits over, as `BEGIN IMMEDIATE` gives SQLite; readers read in one REPEATABLE READ
snapshot. A write sends NOTIFY on CHANNEL inside its transaction (delivered at commit, never for
a rolled-back one), and followers LISTEN: a change reaches them at once, and they poll the
revision only as a safety net, every POLL_SECONDS.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Final, cast
from urllib.parse import urlsplit, urlunsplit

from .dialect import Connection

CHANNEL: Final = "flag_sidecar"
WRITE_LOCK: Final = 0x666C_6167  # the advisory lock key of flag writes ("flag")
POLL_SECONDS: Final = 5.0


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # the extra is not installed
        raise OSError(
            "a postgresql:// source needs psycopg: pip install 'flag-sidecar[postgresql]'"
        ) from None
    return psycopg


class PostgresDialect:
    name = "postgresql"
    poll_seconds = POLL_SECONDS

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @property
    def origin(self) -> str:
        """The URI without its password (logs and problems show it)."""
        split = urlsplit(self.uri)
        if split.password is None:
            return self.uri
        host = split.hostname or ""
        netloc = f"{split.username}@{host}" if split.username else host
        if split.port:
            netloc += f":{split.port}"
        return urlunsplit(split._replace(netloc=netloc))

    def connect(self, create: bool = True) -> Connection:
        psycopg = _psycopg()
        try:
            connection = psycopg.connect(self.uri, autocommit=True, connect_timeout=5)
        except psycopg.Error as error:
            raise OSError(f"cannot connect to {self.origin}: {str(error).strip()}") from None
        return cast(Connection, connection)

    def replaced(self) -> bool:
        return False

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def begin_write(self, connection: Connection) -> None:
        connection.execute("BEGIN")
        connection.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    def begin_read(self, connection: Connection) -> None:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def change_counter(self, connection: Connection) -> int:
        return int(connection.execute("SELECT value FROM revision WHERE id = 1").fetchone()[0])

    def listen(self, connection: Connection) -> None:
        connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, connection: Connection, timeout: float) -> bool:
        # Every pending notification is taken; one is enough to look (the revision says the rest).
        notifies = cast(Any, connection).notifies(timeout=timeout, stop_after=1)
        for _ in notifies:
            pass
        return True

    def interrupt(self, connection: Connection) -> None:
        # Shut the socket down (not just closed: a thread waiting in notifies() would not see a
        # close), so that the wait ends at once with an error.
        with contextlib.suppress(Exception):  # already closed, or never connected
            fileno = cast(Any, connection).fileno()
            with socket.fromfd(fileno, socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.shutdown(socket.SHUT_RDWR)

    def notify(self, connection: Connection, payload: str) -> None:
        connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def is_unavailable(self, error: Exception) -> bool:
        if isinstance(error, OSError):
            return True
        psycopg = _psycopg()
        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
