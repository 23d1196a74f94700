"""PostgreSQL, for fleets: the same schema and SQL as SQLite (migrations/postgresql/), through
psycopg 3 (the `postgresql` extra, imported when a PostgreSQL database is opened).

Writers take turns on a transaction-scoped advisory lock, so that a write validates against the
state it commits over, as `BEGIN IMMEDIATE` gives SQLite; readers read in one REPEATABLE READ
snapshot. A write sends NOTIFY on CHANNEL inside its transaction (delivered at commit, never for
a rolled-back one), and followers LISTEN: a change reaches them at once, and they poll the
revision only as a safety net, every POLL_SECONDS.

Calls take their connections from a psycopg_pool pool (`pool_size`, at most, `pool_timeout`
seconds to wait for one: query options of the URI, taken out before libpq sees it), so that a
follower's reads, the admin API's calls and the users exporter's writes do not queue behind one
another; the LISTEN of a follower has a connection of its own, outside the pool. After a server
restart the pool drops the broken connections at the first failure (FlagDatabase.reset) and opens
new ones as calls need them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any, Final, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .dialect import Connection, Pool

CHANNEL: Final = "flag_sidecar"
WRITE_LOCK: Final = 0x666C_6167  # the advisory lock key of flag writes ("flag")
POLL_SECONDS: Final = 5.0
CONNECT_TIMEOUT: Final = 5
# A follower needs one connection (two while a revalidation meets a push), an admin listener one
# per concurrent call (writes take turns on the advisory lock anyway).
POOL_SIZE: Final = 4
POOL_TIMEOUT: Final = 5.0


def pool_options(uri: str) -> tuple[str, int, float]:
    """(the URI without our query options, pool_size, pool_timeout). ValueError for a bad one."""
    split = urlsplit(uri)
    size, timeout, rest = POOL_SIZE, POOL_TIMEOUT, []
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        if key == "pool_size":
            if not value.isdigit() or not 1 <= int(value) <= 1000:
                raise ValueError(f"pool_size={value!r}: expected a whole number from 1 to 1000")
            size = int(value)
        elif key == "pool_timeout":
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not 0 < timeout <= 3600:
                raise ValueError(f"pool_timeout={value!r}: expected seconds, more than 0")
        else:
            rest.append((key, value))
    return urlunsplit(split._replace(query=urlencode(rest))), size, timeout


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

    pooled = True

    def __init__(self, uri: str) -> None:
        """`uri` may end in pool_size=N and pool_timeout=SECONDS (ValueError when bad)."""
        self.uri, self.pool_size, self.pool_timeout = pool_options(uri)

    @property
    def origin(self) -> str:
        """The URI without its password (logs and problems show it)."""
        return self.origin_of(self.uri)

    @staticmethod
    def origin_of(uri: str) -> str:
        split = urlsplit(uri)
        if split.password is None:
            return uri
        host = split.hostname or ""
        netloc = f"{split.username}@{host}" if split.username else host
        if split.port:
            netloc += f":{split.port}"
        return urlunsplit(split._replace(netloc=netloc))

    def connect(self, create: bool = True) -> Connection:
        psycopg = _psycopg()
        try:
            connection = psycopg.connect(self.uri, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as error:
            raise OSError(f"cannot connect to {self.origin}: {str(error).strip()}") from None
        return cast(Connection, connection)

    def open_pool(self) -> Pool:
        try:
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise OSError(
                "a postgresql:// source needs psycopg_pool: pip install 'flag-sidecar[postgresql]'"
            ) from None
        # The pool warns on every connection it cannot make or finds broken, while the server is
        # down; the source reports the outage once (lost, regained), which is what an operator reads.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        pool = ConnectionPool(
            self.uri,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            min_size=1,
            max_size=self.pool_size,
            timeout=self.pool_timeout,
            name="flag-sidecar",
            open=False,
        )
        pool.open(wait=False)  # a server that is down is the first call's error, not the start's
        return _NamedPool(pool, self)

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


class _NamedPool:
    """The pool, with failures that say why and come at once. Before its first connection and
    after a failure (`check`), a call first opens one connection itself: a server that is down
    refuses it at once, with the reason (refused, authentication, ...), where the pool would only
    wait out its timeout and say that it did."""

    def __init__(self, pool: Any, dialect: PostgresDialect) -> None:
        self._pool = pool
        self._dialect = dialect
        self._trusted = False  # the pool gave a connection since the last failure

    @contextlib.contextmanager
    def connection(self) -> Any:
        from psycopg_pool import PoolTimeout

        if not self._trusted:
            self._dialect.connect().close()  # OSError naming the reason
        try:
            held = self._pool.connection()
            connection = held.__enter__()
        except PoolTimeout:
            self._dialect.connect().close()  # raises OSError with the reason, as it should
            raise OSError(f"no connection to {self._dialect.origin} within the pool timeout") from None
        self._trusted = True
        try:
            yield connection
        except BaseException as error:
            suppressed = held.__exit__(type(error), error, error.__traceback__)
            if self._dialect.is_unavailable(error) if isinstance(error, Exception) else False:
                # The server went away (a restart): its other idle connections are as dead as
                # this one, and the pool would hand them out one by one, each a failed call.
                self.check()
            if not suppressed:
                raise
        else:
            held.__exit__(None, None, None)

    def check(self) -> None:
        self._trusted = False
        with contextlib.suppress(Exception):
            self._pool.check()

    def close(self) -> None:
        self._pool.close(timeout=1)
