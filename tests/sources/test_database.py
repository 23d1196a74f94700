"""The flag database (SQLite file): migrations, one revision per write, and the source that
follows a flag set, fed by writes from another process."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading

import pytest

from sidecar.sources import DatabaseSource, open_database, open_source
from sidecar.sources.database import migrations
from sidecar.sources.registry import SourceURIError
from sidecar.sources.remote_options import RemoteSourceOptions
from tests.conftest import eventually

FLAG = {"key": "f", "enabled": True, "variants": [{"key": "on", "value": True}]}


@pytest.fixture
def uri(tmp_path):
    return f"sqlite://{tmp_path}/flags.db"


def test_migrations_are_applied_once_and_recorded(uri, tmp_path):
    database = open_database(uri)
    assert [m.version for m in database.migrate()] == [m.version for m in migrations("sqlite")]
    assert database.migrate() == []  # a second start finds the work done
    rows = (
        sqlite3.connect(tmp_path / "flags.db").execute("SELECT version, name FROM schema_version").fetchall()
    )
    assert rows == [(1, "flags"), (2, "users"), (3, "history_by_revision"), (4, "user_context")]


def test_a_newer_schema_is_refused(uri, tmp_path):
    open_database(uri).migrate()
    with sqlite3.connect(tmp_path / "flags.db") as connection:
        connection.execute("INSERT INTO schema_version VALUES (99, 'future', 'x')")
    with pytest.raises(RuntimeError, match="schema version 99"):
        open_database(uri).migrate()


def test_a_write_of_several_rows_is_one_revision_and_a_failed_one_is_none(uri):
    database = open_database(uri)
    database.migrate()
    with database.write("default", "alice") as writer:
        writer.put("flag", "a", {**FLAG, "key": "a"}, 1, "create", None)
        writer.put("flag", "b", {**FLAG, "key": "b"}, 1, "create", None)
    content = database.read("default")
    assert [item.key for item in content.flags] == ["a", "b"]
    assert content.revision == 1
    assert {entry.revision for entry in database.history("default", "flag", "a")} == {1}

    def failing_write() -> None:
        with database.write("default", "alice") as writer:
            writer.put("flag", "c", {**FLAG, "key": "c"}, 1, "create", None)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_write()
    assert [item.key for item in database.read("default").flags] == ["a", "b"]
    assert database.set_revision("default") == 1


def test_flag_sets_are_apart(uri):
    database = open_database(uri)
    database.migrate()
    with database.write("checkout", "alice") as writer:
        writer.put("flag", "f", FLAG, 1, "create", None)
    assert database.read("default").flags == ()
    document = open_source(uri, RemoteSourceOptions(selector="flag-set=checkout")).fetch()
    assert json.loads(document.data)["flags"] == [FLAG]
    assert document.versions == {"f": 1}
    assert document.revision == "1"


def test_an_sqlite_uri_needs_a_local_path():
    with pytest.raises(SourceURIError, match="host must be empty"):
        open_source("sqlite://db.internal/flags.db")
    with pytest.raises(SourceURIError, match="expected a file path"):
        open_source("sqlite:///var/lib/")
    with pytest.raises(SourceURIError, match="names no database"):
        open_database("file:///etc/flags.yaml")


class _Listener:
    def __init__(self) -> None:
        self.changes = 0
        self.events: list[str] = []
        self.confirmations = 0
        self.changed_event = threading.Event()

    def changed(self) -> None:
        self.changes += 1
        self.changed_event.set()

    def lost(self, event: str, message: str) -> None:
        self.events.append(event)

    def regained(self, event: str, message: str) -> None:
        self.events.append(event)

    def confirmed(self, revision: str) -> None:
        self.confirmations += 1


def test_the_source_notices_a_commit_by_another_process(uri, tmp_path):
    source = open_source(uri)
    assert isinstance(source, DatabaseSource)
    source.fetch()
    listener = _Listener()
    source.watch(listener)
    try:
        # Another process writes (as another sidecar's admin would): nothing in this one tells it.
        script = (
            "from sidecar.sources import open_database\n"
            f"database = open_database({uri!r})\n"
            "with database.write('default', 'other') as writer:\n"
            f"    writer.put('flag', 'f', {FLAG!r}, 1, 'create', None)\n"
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
        assert listener.changed_event.wait(5)
        assert json.loads(source.fetch().data)["flags"] == [FLAG]
        # A write to another flag set moves the counter, not this set's revision: no change.
        changes = listener.changes
        with open_database(uri).write("other", "x") as writer:
            writer.put("flag", "g", {**FLAG, "key": "g"}, 1, "create", None)
        eventually(lambda: source.database.change_counter() is not None)
        listener.changed_event.clear()
        assert not listener.changed_event.wait(0.3)
        assert listener.changes == changes
    finally:
        source.close()


def test_a_file_that_is_no_database_is_refused_with_the_reason(tmp_path):
    (tmp_path / "flags.db").write_bytes(b"not a database " * 100)
    with pytest.raises(OSError, match="file is not a database"):
        open_source(f"sqlite://{tmp_path}/flags.db").fetch()
    with pytest.raises(OSError, match="unable to open database file"):
        open_source(f"sqlite://{tmp_path}/no-such-directory/flags.db").fetch()


def test_a_deleted_file_is_reported_not_recreated_and_a_restored_one_is_followed(uri, tmp_path):
    path = tmp_path / "flags.db"
    database = open_database(uri)
    database.migrate()
    with database.write("default", "alice") as writer:
        writer.put("flag", "f", FLAG, 1, "create", None)
    # A backup with another flag in it, made with SQLite's own backup (consistent under WAL).
    backup = tmp_path / "backup.db"
    with database.write("default", "alice") as writer:
        writer.put("flag", "g", {**FLAG, "key": "g"}, 1, "create", None)
    with sqlite3.connect(backup) as copy:
        sqlite3.connect(path).backup(copy)
    with database.write("default", "alice") as writer:
        writer.delete("flag", "g", 2, None)
    database.close()

    source = open_source(uri)
    assert [f["key"] for f in json.loads(source.fetch().data)["flags"]] == ["f"]
    listener = _Listener()
    source.watch(listener)
    try:
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        eventually(lambda: listener.events == ["flag_database_unavailable"], timeout=5)
        assert not path.exists()  # reported, not quietly re-created empty
        backup.replace(path)
        eventually(lambda: listener.events[-1:] == ["flag_database_available"], timeout=5)
        assert listener.changed_event.wait(5)
        assert [f["key"] for f in json.loads(source.fetch().data)["flags"]] == ["f", "g"]

        # Copied over while followed (a restore without a deletion): reopened and followed.
        other = tmp_path / "other.db"
        other_database = open_database(f"sqlite://{other}")
        other_database.migrate()
        with other_database.write("default", "bob") as writer:
            for _ in range(3):  # a revision ahead of the followed file's
                writer.put("flag", "h", {**FLAG, "key": "h"}, 1, "create", None)
        other_database.close()
        listener.changed_event.clear()
        other.replace(path)
        assert listener.changed_event.wait(5)
        assert [f["key"] for f in json.loads(source.fetch().data)["flags"]] == ["h"]
    finally:
        source.close()
