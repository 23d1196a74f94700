"""The flag database: flag sets, their flags and segments (each stored whole, as its JSON in the
flag file's shape), every version of them (history), and the revision counter, over one Dialect.

Reads (`read`) see one committed state. Writes (`write`) run in one transaction that holds the
write lock from its first statement: the writer reads the current set inside it, and every row it
writes, its history rows and the revision bump commit together or not at all, so a reader never
sees half a change. This module stores what it is given; what may be written (validation,
expected versions) is the store's business (sidecar.store.admin).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

from .dialect import Connection, Dialect, Pool
from .migrate import Migration, migrate

log = logging.getLogger(__name__)

Kind = Literal["flag", "segment"]
_TABLES: Final[Mapping[str, str]] = {"flag": "flags", "segment": "segments"}


# FlagDatabase.changes: the set's revision (a row of kind 'set'), then every flag and segment the
# history names after a revision, joined to its current row (none: deleted since).
_CHANGES: Final = (
    "SELECT 'set', '', revision, NULL, NULL, NULL FROM flag_sets WHERE name = ? "
    "UNION ALL "
    "SELECT t.kind, t.key, COALESCE(f.version, s.version), COALESCE(f.definition, s.definition), "
    "COALESCE(f.updated_at, s.updated_at), COALESCE(f.updated_by, s.updated_by) "
    "FROM (SELECT DISTINCT kind, key FROM history WHERE flag_set = ? AND revision > ?) AS t "
    "LEFT JOIN flags AS f ON t.kind = 'flag' AND f.flag_set = ? AND f.key = t.key "
    "LEFT JOIN segments AS s ON t.kind = 'segment' AND s.flag_set = ? AND s.key = t.key"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(definition: Mapping[str, Any] | None) -> str | None:
    if definition is None:
        return None
    return json.dumps(definition, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """A flag or segment as stored: its definition (JSON, flag-file shape) and its version."""

    key: str
    version: int
    definition: Mapping[str, Any]
    updated_at: str
    updated_by: str
    text: str  # the definition's JSON as stored, for a document built without re-encoding


@dataclass(frozen=True, slots=True)
class SetContent:
    """One flag set as one committed state saw it."""

    name: str
    revision: int  # the revision of the set's last write (0: never written)
    flags: tuple[StoredItem, ...]  # by key
    segments: tuple[StoredItem, ...]

    def flag(self, key: str) -> StoredItem | None:
        return next((item for item in self.flags if item.key == key), None)

    def segment(self, key: str) -> StoredItem | None:
        return next((item for item in self.segments if item.key == key), None)


@dataclass(frozen=True, slots=True)
class SetChanges:
    """What the writes to one flag set after a revision left: the flags and segments they touched
    as they are now, and the keys of those they deleted. `whole` (a revision that went back, a
    restored database) means `flags` and `segments` are the whole set, not changes."""

    revision: int  # the set's revision now
    flags: tuple[StoredItem, ...] = ()
    segments: tuple[StoredItem, ...] = ()
    removed: tuple[tuple[Kind, str], ...] = ()
    whole: bool = False


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    kind: Kind
    key: str
    version: int
    action: str  # create, update, delete, rollback, import
    actor: str
    at: str  # ISO 8601, UTC
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    revision: int


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    context_kind: str
    first_seen: str
    last_seen: str
    context: Mapping[str, Any] | None = None  # of the latest evaluation recorded; None: none


def _user(row: Sequence[Any]) -> UserRecord:
    user_id, kind, first, last, context = row
    return UserRecord(
        str(user_id), str(kind), str(first), str(last), None if context is None else json.loads(context)
    )


@dataclass(frozen=True, slots=True)
class UserEvaluation:
    """The latest evaluation of one flag for one user (what the `users` exporter keeps)."""

    user_id: str
    flag_key: str
    flag_version: str
    variant: str
    value: Any  # JSON; None when the caller's default applied
    reason: str
    error_code: str
    at: str


class FlagDatabase:
    """One database (a Dialect), shared by a source that follows a flag set and an admin that
    writes. One connection, used by one caller at a time (a lock): SQLite writes one at a time
    anyway, and reads are short. A database that pushes (PostgreSQL) waits for notifications on a
    connection of its own, so that a reader never waits behind the wait."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._connection: Connection | None = None  # the one connection of a database without a pool
        self._pool: Pool | None = None  # opened by the first call (a database with one)
        self._local = threading.local()  # the connection of this thread's current session
        self._lock = threading.RLock()
        # False once the database exists for sure: reconnecting then never creates an empty one.
        self.create = True
        self._connections = 0  # connections opened: a counter is only comparable within one
        self._listen_connection: Connection | None = None
        self._listen_lock = threading.Lock()
        self._waiting_stopped = False  # stop_waiting was called: no wait begins any more

    @property
    def origin(self) -> str:
        return self.dialect.origin

    def _connected(self) -> Connection:
        if self._connection is None:
            self._connection = self.dialect.connect(self.create)
            self._connections += 1
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        self._close_listener()

    def stop_waiting(self) -> None:
        """End a `wait_for_change` in another thread at once, and every later one (the follower
        is closing)."""
        self._waiting_stopped = True
        self._close_listener()

    def _close_listener(self) -> None:
        connection, self._listen_connection = self._listen_connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                self.dialect.interrupt(connection)
                connection.close()

    def reset(self) -> None:
        """Drop the connection after an error that may have broken it; the next call reconnects. A
        pool drops every broken connection it holds (after a server restart, all of them)."""
        pool = self._pool
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.check()
            return
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    @contextmanager
    def _session(self) -> Iterator[Connection]:
        """The connection this thread's calls use until the block ends: the one connection, under
        the lock (SQLite), or one of the pool's (PostgreSQL); within a session, the same one."""
        held = getattr(self._local, "connection", None)
        if held is not None:
            yield held
            return
        pool = self._pool_or_none()
        with contextlib.ExitStack() as stack:
            if pool is None:
                stack.enter_context(self._lock)
                connection = self._connected()
            else:
                connection = stack.enter_context(pool.connection())
            self._local.connection = connection
            try:
                yield connection
            finally:
                self._local.connection = None

    def _pool_or_none(self) -> Pool | None:
        if self._pool is None and self.dialect.pooled:
            with self._lock:
                if self._pool is None:
                    self._pool = self.dialect.open_pool()
        return self._pool

    def _execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        with self._unavailable_as_os_error(), self._session() as connection:
            return connection.execute(self.dialect.sql(sql), tuple(parameters))

    @contextmanager
    def _unavailable_as_os_error(self) -> Iterator[None]:
        """The database cannot be reached or used now (locked past the busy timeout, down, gone):
        an OSError, which callers report and survive; anything else is a bug and goes up as it is."""
        try:
            yield
        except OSError:
            raise
        except Exception as error:
            if self.dialect.is_unavailable(error):
                raise OSError(f"{self.origin}: {str(error).strip()}") from error
            raise

    # ------------------------------------------------------------ schema

    def migrate(self) -> list[Migration]:
        """Bring the schema up to date (migrate.py); the migrations applied now."""
        with self._unavailable_as_os_error(), self._session() as connection:
            return migrate(self.dialect, connection)

    def change_counter(self) -> tuple[int, int]:
        """(connection number, the dialect's change counter): it differs whenever another
        connection committed, or this one was reopened (a database replaced at its address is
        reopened first; OSError when it is gone)."""
        with self._lock:
            if self._pool is None and self._connection is not None and self.dialect.replaced():
                self.reset()
        with self._unavailable_as_os_error(), self._session() as connection:
            counter = self.dialect.change_counter(connection)
        return self._connections, counter

    def wait_for_change(self, timeout: float) -> bool:
        """Wait up to `timeout` for a pushed change (PostgreSQL's NOTIFY); False at once when the
        database pushes nothing (SQLite), for the caller to poll."""
        if self.dialect.poll_seconds is None:  # nothing is pushed: no connection to wait on
            return False
        with self._listen_lock:
            try:
                with self._unavailable_as_os_error():
                    if self._listen_connection is None:
                        connection = self.dialect.connect(self.create)
                        self.dialect.listen(connection)
                        self._listen_connection = connection
                    # Checked once the connection is where stop_waiting finds it: either it sees
                    # the connection and interrupts the wait, or the wait sees the flag.
                    if self._waiting_stopped:
                        return False
                    return self.dialect.wait(self._listen_connection, timeout)
            except BaseException:
                # A notification missed until the next LISTEN is found by the caller's counter.
                self._close_listener()
                raise

    # ------------------------------------------------------------ reading

    def set_revision(self, flag_set: str) -> int:
        """The revision of the set's last write (0 for a set never written): one small query."""
        with self._unavailable_as_os_error(), self._session():
            row = self._execute("SELECT revision FROM flag_sets WHERE name = ?", (flag_set,)).fetchone()
        return int(row[0]) if row else 0

    def read(self, flag_set: str) -> SetContent:
        """The whole set, from one committed state."""
        with self._unavailable_as_os_error(), self._session() as connection:
            self.dialect.begin_read(connection)
            try:
                content = self._content(flag_set)
            finally:
                connection.execute("COMMIT")
        return content

    def changes(self, flag_set: str, since: int) -> SetChanges:
        """What changed in the set after revision `since`, in one statement (one round trip, and
        one committed state, as any single statement sees): the set's revision, and each flag and
        segment its history names after `since` as it is now (deleted: no definition). An
        unchanged set costs that one small query, on the history's index by revision."""
        with self._unavailable_as_os_error(), self._session():
            rows = self._execute(_CHANGES, (flag_set, flag_set, since, flag_set, flag_set)).fetchall()
        revision = 0
        found: dict[str, list[StoredItem]] = {"flag": [], "segment": []}
        removed: list[tuple[Kind, str]] = []
        for kind, key, version, text, at, by in rows:
            if kind == "set":
                revision = int(version)
            elif text is None:
                removed.append((cast(Kind, kind), str(key)))
            else:
                found[kind].append(StoredItem(key, int(version), json.loads(text), str(at), str(by), text))
        if revision < since:  # the database went back (a restore): read it whole
            content = self.read(flag_set)
            return SetChanges(content.revision, content.flags, content.segments, whole=True)
        return SetChanges(
            revision,
            tuple(sorted(found["flag"], key=lambda item: item.key)),
            tuple(sorted(found["segment"], key=lambda item: item.key)),
            tuple(sorted(removed)),
        )

    def _content(self, flag_set: str) -> SetContent:
        row = self._execute("SELECT revision FROM flag_sets WHERE name = ?", (flag_set,)).fetchone()
        return SetContent(
            flag_set,
            int(row[0]) if row else 0,
            self._items("flags", flag_set),
            self._items("segments", flag_set),
        )

    def _items(self, table: str, flag_set: str) -> tuple[StoredItem, ...]:
        rows = self._execute(
            f"SELECT key, version, definition, updated_at, updated_by FROM {table} "
            "WHERE flag_set = ? ORDER BY key",
            (flag_set,),
        ).fetchall()
        return tuple(
            StoredItem(key, int(version), json.loads(text), str(at), str(by), text)
            for key, version, text, at, by in rows
        )

    def page(self, flag_set: str, kind: Kind, after: str, limit: int) -> list[StoredItem]:
        """Up to `limit` flags or segments of the set, by key, after the key `after` ("": the first)."""
        with self._unavailable_as_os_error(), self._session():
            rows = self._execute(
                f"SELECT key, version, definition, updated_at, updated_by FROM {_TABLES[kind]} "
                "WHERE flag_set = ? AND key > ? ORDER BY key LIMIT ?",
                (flag_set, after, limit),
            ).fetchall()
        return [
            StoredItem(key, int(version), json.loads(text), str(at), str(by), text)
            for key, version, text, at, by in rows
        ]

    def item(self, flag_set: str, kind: Kind, key: str) -> StoredItem | None:
        with self._unavailable_as_os_error(), self._session():
            row = self._execute(
                f"SELECT key, version, definition, updated_at, updated_by FROM {_TABLES[kind]} "
                "WHERE flag_set = ? AND key = ?",
                (flag_set, key),
            ).fetchone()
        if row is None:
            return None
        key, version, text, at, by = row
        return StoredItem(key, int(version), json.loads(text), str(at), str(by), text)

    def flag_sets(self) -> list[str]:
        with self._unavailable_as_os_error(), self._session():
            rows = self._execute("SELECT name FROM flag_sets ORDER BY name").fetchall()
        return [str(row[0]) for row in rows]

    def history(
        self, flag_set: str, kind: Kind, key: str, *, before_version: int | None = None, limit: int = 100
    ) -> list[HistoryEntry]:
        """Versions of one flag or segment, newest first, older than `before_version` if given."""
        with self._unavailable_as_os_error(), self._session():
            rows = self._execute(
                "SELECT kind, key, version, action, actor, at, before, after, revision FROM history "
                "WHERE flag_set = ? AND kind = ? AND key = ? AND version < ? "
                "ORDER BY version DESC, id DESC LIMIT ?",
                (flag_set, kind, key, before_version if before_version is not None else 2**62, limit),
            ).fetchall()
        return [_history_entry(row) for row in rows]

    def history_entry(self, flag_set: str, kind: Kind, key: str, version: int) -> HistoryEntry | None:
        with self._unavailable_as_os_error(), self._session():
            row = self._execute(
                "SELECT kind, key, version, action, actor, at, before, after, revision FROM history "
                "WHERE flag_set = ? AND kind = ? AND key = ? AND version = ? ORDER BY id DESC LIMIT 1",
                (flag_set, kind, key, version),
            ).fetchone()
        return None if row is None else _history_entry(row)

    # ------------------------------------------------------------ users and evaluations

    def record_evaluations(
        self, flag_set: str, users: Sequence[UserRecord], evaluations: Sequence[UserEvaluation]
    ) -> None:
        """Upsert users (last seen) and each (user, flag)'s latest evaluation, in one transaction
        (no revision: served flags do not change)."""
        with self._unavailable_as_os_error(), self._session() as connection:
            self.dialect.begin_write(connection)
            try:
                for user in users:
                    self._execute(
                        "INSERT INTO users (flag_set, user_id, context_kind, first_seen, last_seen, context) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (flag_set, user_id) DO UPDATE SET "
                        "context_kind = excluded.context_kind, last_seen = excluded.last_seen, "
                        "context = COALESCE(excluded.context, users.context)",
                        (
                            flag_set,
                            user.user_id,
                            user.context_kind,
                            user.first_seen,
                            user.last_seen,
                            None if user.context is None else _json(user.context),
                        ),
                    )
                for item in evaluations:
                    self._execute(
                        "INSERT INTO evaluations (flag_set, user_id, flag_key, flag_version, variant, value, "
                        "reason, error_code, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (flag_set, user_id, flag_key) DO UPDATE SET "
                        "flag_version = excluded.flag_version, variant = excluded.variant, "
                        "value = excluded.value, reason = excluded.reason, error_code = excluded.error_code, "
                        "at = excluded.at",
                        (
                            flag_set,
                            item.user_id,
                            item.flag_key,
                            item.flag_version,
                            item.variant,
                            None if item.value is None else json.dumps(item.value, separators=(",", ":")),
                            item.reason,
                            item.error_code,
                            item.at,
                        ),
                    )
                connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    connection.execute("ROLLBACK")
                raise

    def users(self, flag_set: str, after: str, limit: int) -> list[UserRecord]:
        with self._unavailable_as_os_error(), self._session():
            rows = self._execute(
                "SELECT user_id, context_kind, first_seen, last_seen, context FROM users "
                "WHERE flag_set = ? AND user_id > ? ORDER BY user_id LIMIT ?",
                (flag_set, after, limit),
            ).fetchall()
        return [_user(row) for row in rows]

    def user(self, flag_set: str, user_id: str) -> tuple[UserRecord, list[UserEvaluation]] | None:
        with self._unavailable_as_os_error(), self._session():
            row = self._execute(
                "SELECT user_id, context_kind, first_seen, last_seen, context FROM users "
                "WHERE flag_set = ? AND user_id = ?",
                (flag_set, user_id),
            ).fetchone()
            if row is None:
                return None
            rows = self._execute(
                "SELECT user_id, flag_key, flag_version, variant, value, reason, error_code, at "
                "FROM evaluations WHERE flag_set = ? AND user_id = ? ORDER BY flag_key",
                (flag_set, user_id),
            ).fetchall()
        evaluations = [
            UserEvaluation(u, k, str(v), var, None if value is None else json.loads(value), r, e, str(at))
            for u, k, v, var, value, r, e, at in rows
        ]
        return _user(row), evaluations

    def delete_user(self, flag_set: str, user_id: str) -> bool:
        """Delete the user and their evaluations; False when there was no such user."""
        with self._unavailable_as_os_error(), self._session() as connection:
            self.dialect.begin_write(connection)
            try:
                self._execute(
                    "DELETE FROM evaluations WHERE flag_set = ? AND user_id = ?", (flag_set, user_id)
                )
                deleted = self._execute(
                    "DELETE FROM users WHERE flag_set = ? AND user_id = ?", (flag_set, user_id)
                ).rowcount
                connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    connection.execute("ROLLBACK")
                raise
        return bool(deleted)

    def delete_evaluation(self, flag_set: str, user_id: str, flag_key: str) -> bool:
        with self._unavailable_as_os_error(), self._session():
            deleted = self._execute(
                "DELETE FROM evaluations WHERE flag_set = ? AND user_id = ? AND flag_key = ?",
                (flag_set, user_id, flag_key),
            ).rowcount
        return bool(deleted)

    # ------------------------------------------------------------ writing

    @contextmanager
    def write(self, flag_set: str, actor: str) -> Iterator[SetWriter]:
        """One write transaction on `flag_set`, holding the write lock: the writer's `content` is
        current, and what it writes commits with one revision bump when the block ends (rolled
        back if it raises)."""
        with self._unavailable_as_os_error(), self._session() as connection:
            self.dialect.begin_write(connection)
            try:
                writer = SetWriter(self, flag_set, actor, self._content(flag_set))
                yield writer
                if writer.written:
                    self.dialect.notify(connection, f"{flag_set}:{writer.revision}")
                connection.execute("COMMIT")
            except BaseException:
                try:
                    connection.execute("ROLLBACK")
                except Exception:  # the connection is broken: the transaction is gone with it
                    self.reset()
                raise


class SetWriter:
    """The writes of one transaction on one flag set (FlagDatabase.write)."""

    def __init__(self, database: FlagDatabase, flag_set: str, actor: str, content: SetContent) -> None:
        self._database = database
        self.flag_set = flag_set
        self.actor = actor
        self.content = content
        self.at = _now()
        self.written = False
        self._revision: int | None = None

    @property
    def revision(self) -> int:
        """The revision this transaction commits as, taken at its first write, when the set's row
        (created by its first write ever) is given it too."""
        if self._revision is None:
            execute = self._database._execute
            execute("UPDATE revision SET value = value + 1 WHERE id = 1")
            revision = int(execute("SELECT value FROM revision WHERE id = 1").fetchone()[0])
            execute(
                "INSERT INTO flag_sets (name, revision, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET revision = excluded.revision",
                (self.flag_set, revision, self.at),
            )
            self._revision = revision
        return self._revision

    def last_version(self, kind: Kind, key: str) -> int:
        """The highest version the flag or segment ever had (0: never), deleted ones included, so
        that a re-created flag goes on counting instead of serving an old number again."""
        row = self._database._execute(
            "SELECT COALESCE(MAX(version), 0) FROM history WHERE flag_set = ? AND kind = ? AND key = ?",
            (self.flag_set, kind, key),
        ).fetchone()
        current = self.content.flag(key) if kind == "flag" else self.content.segment(key)
        return max(int(row[0]), current.version if current else 0)

    def put(
        self,
        kind: Kind,
        key: str,
        definition: Mapping[str, Any],
        version: int,
        action: str,
        before: Mapping[str, Any] | None,
    ) -> None:
        """Store `definition` as version `version` of the flag or segment `key` (its row replaced)."""
        execute, table, revision = self._database._execute, _TABLES[kind], self.revision
        execute(f"DELETE FROM {table} WHERE flag_set = ? AND key = ?", (self.flag_set, key))
        execute(
            f"INSERT INTO {table} (flag_set, key, version, definition, updated_at, updated_by) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (self.flag_set, key, version, _json(definition), self.at, self.actor),
        )
        self._history(kind, key, version, action, before, definition, revision)

    def delete(self, kind: Kind, key: str, version: int, before: Mapping[str, Any] | None) -> None:
        """Remove the flag or segment; its history records the deletion as `version`."""
        execute, revision = self._database._execute, self.revision
        execute(f"DELETE FROM {_TABLES[kind]} WHERE flag_set = ? AND key = ?", (self.flag_set, key))
        self._history(kind, key, version, "delete", before, None, revision)

    def _history(
        self,
        kind: Kind,
        key: str,
        version: int,
        action: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        revision: int,
    ) -> None:
        self.written = True
        self._database._execute(
            "INSERT INTO history (flag_set, kind, key, version, action, actor, at, before, after, revision) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.flag_set,
                kind,
                key,
                version,
                action,
                self.actor,
                self.at,
                _json(before),
                _json(after),
                revision,
            ),
        )


def _history_entry(row: Sequence[Any]) -> HistoryEntry:
    kind, key, version, action, actor, at, before, after, revision = row
    return HistoryEntry(
        kind,
        key,
        int(version),
        action,
        actor,
        str(at),
        None if before is None else json.loads(before),
        None if after is None else json.loads(after),
        int(revision),
    )
