"""Flag sets in a database (SQLite; PostgreSQL as a second dialect of the same code): the schema
and its migrations, reading a set as a document (a Source), and the transaction writes are made
in. What may be written is decided above, by sidecar.store.admin."""

from ..remote_options import DEFAULT_FLAG_SET
from .database import (
    FlagDatabase,
    HistoryEntry,
    Kind,
    SetChanges,
    SetContent,
    SetWriter,
    StoredItem,
    UserEvaluation,
    UserRecord,
)
from .migrate import Migration, migrations
from .source import DatabaseSource, set_document
from .sqlite import SqliteDialect

__all__ = [
    "DEFAULT_FLAG_SET",
    "DatabaseSource",
    "FlagDatabase",
    "HistoryEntry",
    "Kind",
    "Migration",
    "SetChanges",
    "SetContent",
    "SetWriter",
    "SqliteDialect",
    "StoredItem",
    "UserEvaluation",
    "UserRecord",
    "migrations",
    "set_document",
]
