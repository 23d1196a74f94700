"""The same flag database on a real PostgreSQL (the second dialect): migrations, the race of two
admins, a follower told by NOTIFY, and a sidecar process serving what the admin API writes.
Skipped when no pg_ctl is found (tests/postgres_server.py), except on CI, where `make test` installs it."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from flagsidecar.v1 import admin_pb2
from sidecar.sources import open_database, open_source
from sidecar.store import admin_edits
from sidecar.store.admin import FlagAdmin
from sidecar.store.admin_errors import VersionConflict
from tests import postgres_server
from tests.admin.conftest import AUTH, AdminSidecar, evaluate, new_flag
from tests.conftest import eventually
from tests.serve_process import ServeProcess

# `make test` installs Debian's postgresql when it is missing (Makefile, `postgres`): on CI a missing
# server is a failure, not a skip; elsewhere (pytest run by hand on a machine without it) a skip.
if os.environ.get("CI") and not postgres_server.available():
    raise RuntimeError("CI: no pg_ctl found; `make postgres` installs Debian's postgresql")
pytestmark = pytest.mark.skipif(not postgres_server.available(), reason="no pg_ctl (PostgreSQL) found")

FLAG = {
    "key": "f",
    "enabled": True,
    "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
}


@pytest.fixture(scope="module")
def server():
    with postgres_server.postgres_server() as running:
        yield running


@pytest.fixture
def uri(server):
    """A fresh database per test."""
    import psycopg

    name = f"flags_{time.monotonic_ns()}"
    with psycopg.connect(server.uri, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server.uri.rsplit("/", 1)[0] + f"/{name}"


def test_migrations_and_writes_on_postgresql(uri, databases):
    admin = FlagAdmin(databases(uri))
    admin.start()
    assert databases(uri).migrate() == []  # applied once
    record = admin.create_flag("default", dict(FLAG), "alice")
    assert record.version == 1
    edit = admin_edits.set_fields({"enabled": False}, admin_edits.FLAG_FIELDS)
    assert admin.edit_flag("default", "f", 1, edit, "bob").version == 2
    with pytest.raises(VersionConflict):
        admin.edit_flag("default", "f", 1, edit, "bob")
    assert [entry.actor for entry in admin.flag_history("default", "f", 0, "").items] == ["bob", "alice"]


def test_two_admins_racing_on_postgresql_one_wins(uri, databases):
    first, second = FlagAdmin(databases(uri)), FlagAdmin(databases(uri))
    first.start()
    first.create_flag("default", dict(FLAG), "setup")
    barrier, outcomes = threading.Barrier(2), []

    def write(admin: FlagAdmin, name: str) -> None:
        edit = admin_edits.set_fields({"description": name}, admin_edits.FLAG_FIELDS)
        barrier.wait()
        try:
            outcomes.append(admin.edit_flag("default", "f", 1, edit, name).version)
        except VersionConflict as conflict:
            outcomes.append(conflict)

    threads = [threading.Thread(target=write, args=(a, n)) for a, n in ((first, "one"), (second, "two"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(type, outcomes), key=str) == sorted([int, VersionConflict], key=str)
    conflict = next(o for o in outcomes if isinstance(o, VersionConflict))
    assert conflict.current == 2


def test_a_follower_is_told_by_notify(uri, databases):
    admin = FlagAdmin(databases(uri))
    admin.start()
    source = open_source(uri)
    source.fetch()
    told = threading.Event()

    class Listener:
        def changed(self) -> None:
            told.set()

        def lost(self, event: str, message: str) -> None: ...

        def regained(self, event: str, message: str) -> None: ...

        def confirmed(self, revision: str) -> None: ...

    source.watch(Listener())
    try:
        time.sleep(0.2)  # LISTEN issued
        began = time.monotonic()
        admin.create_flag("default", dict(FLAG), "alice")
        assert told.wait(3)
        # Pushed: far sooner than the safety-net poll.
        assert time.monotonic() - began < source.database.dialect.poll_seconds
        assert json.loads(source.fetch().data)["flags"][0]["key"] == "f"
    finally:
        source.close()


def test_a_sidecar_on_postgresql_serves_what_the_admin_api_writes(uri, token_file):
    process = AdminSidecar(
        ServeProcess(
            None, "--source", uri, "--admin-listen", "127.0.0.1:0", "--admin-token-file", str(token_file)
        ),
        database=None,  # type: ignore[arg-type]
    )
    follower = AdminSidecar(ServeProcess(None, "--source", uri), database=None)  # type: ignore[arg-type]
    try:
        process.admin().CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH)
        for each in (process, follower):
            answer = eventually(lambda each=each: evaluate(each.evaluation(), "new-checkout"), timeout=10)
            assert answer.flag_version == 1
    finally:
        process.close()
        follower.close()


def _connections(server, uri: str) -> int:
    """Connections to `uri`'s database, as the server counts them."""
    import psycopg

    name = uri.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(server.uri, autocommit=True) as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        row = connection.execute(query, (name,)).fetchone()
    return int(row[0])


def test_the_pool_is_sized_by_the_uri_and_a_bad_size_is_refused(uri, databases):
    from sidecar.sources.registry import SourceURIError

    database = databases(uri + "?pool_size=2&pool_timeout=1.5&application_name=flags")
    dialect = database.dialect
    assert (dialect.pool_size, dialect.pool_timeout) == (2, 1.5)
    assert dialect.uri.endswith("?application_name=flags")  # libpq's own options stay
    with pytest.raises(SourceURIError, match=r"pool_size='0': expected a whole number from 1 to 1000"):
        open_database(uri + "?pool_size=0")
    with pytest.raises(SourceURIError, match=r"pool_timeout='soon'"):
        open_source(uri + "?pool_timeout=soon")


def test_a_read_does_not_wait_for_a_write_in_progress_and_the_pool_closes(server, uri):
    database = open_database(uri)
    database.migrate()
    writing, done = threading.Event(), threading.Event()

    def write() -> None:
        with database.write("default", "alice") as writer:
            writer.put("flag", "f", FLAG, 1, "create", None)
            writing.set()
            done.wait(30)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(30)
        # Another connection of the pool: the read answers while the write's transaction is open
        # (one shared connection would have made it wait for the write), and sees none of it.
        assert database.read("default").flags == ()
        # Two at least, and never past the pool's size: psycopg_pool adds a connection whenever a
        # caller has to wait, migrate()'s too while the pool's first one was still opening, so a
        # third may be open already.
        assert 2 <= _connections(server, uri) <= database.dialect.pool_size
    finally:
        done.set()
        writer.join(30)
    assert [item.key for item in database.read("default").flags] == ["f"]
    database.close()
    eventually(lambda: _connections(server, uri) == 0, timeout=10)


def test_the_pool_survives_a_server_restart():
    with postgres_server.postgres_server() as server:
        uri = postgres_server.fresh_database(server)
        database = open_database(uri)
        database.migrate()
        with database.write("default", "alice") as writer:
            writer.put("flag", "f", FLAG, 1, "create", None)
        server.stop()
        with pytest.raises(OSError, match=r"terminating connection|Connection refused|cannot connect"):
            database.read("default")
        server.start()

        def readable() -> bool:
            try:
                return [item.key for item in database.read("default").flags] == ["f"]
            except OSError:
                database.reset()  # what every caller does after a failure
                return False

        eventually(readable, timeout=20)
        with database.write("default", "alice") as writer:  # and writes, on the same pool
            writer.put("flag", "g", {**FLAG, "key": "g"}, 1, "create", None)
        database.close()
