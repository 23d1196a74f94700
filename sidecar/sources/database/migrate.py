"""Schema migrations: plain SQL files, one per version, applied in order and recorded in a
`schema_version` table (docs/admin.md says why not a migration library).

Each file is applied in its own write transaction, together with its schema_version row, so a
failed migration leaves the schema as it was; two processes starting at once take turns, and the
second finds the work done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from .dialect import Connection, Dialect

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    """The migrations of one dialect (migrations/<dialect>/NNNN_name.sql), in version order."""
    folder = resources.files(__package__).joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda migration: migration.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(
                f"{dialect} migrations: expected version {expected}, found {migration.version}"
            )
    return found


def statements(sql: str) -> list[str]:
    """A migration file's statements: comments dropped, split at the `;` that ends a line (our
    files put no `;` at a line's end inside a string)."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*$", text, flags=re.MULTILINE) if part.strip()]


def schema_version(dialect: Dialect, connection: Connection) -> int:
    connection.execute(_VERSION_TABLE)
    row = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def migrate(dialect: Dialect, connection: Connection) -> list[Migration]:
    """Apply the migrations the database does not have yet; return them. Refuses a database
    whose schema is newer than this program knows (RuntimeError)."""
    known = migrations(dialect.name)
    applied: list[Migration] = []
    for migration in known:
        dialect.begin_write(connection)
        try:
            current = schema_version(dialect, connection)
            if current >= migration.version:
                connection.execute("COMMIT")
                continue
            for statement in statements(migration.sql):
                connection.execute(statement)
            connection.execute(
                dialect.sql("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)"),
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        applied.append(migration)
    current = schema_version(dialect, connection)
    if current > len(known):
        raise RuntimeError(
            f"{dialect.origin} has schema version {current}; this flag-sidecar knows up to "
            f"{len(known)}: upgrade flag-sidecar"
        )
    return applied
