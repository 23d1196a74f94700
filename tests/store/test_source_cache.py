"""The TTL-cached store in front of a database source (sidecar/store/source_cache.py), against a
real SQLite file and a real PostgreSQL server: entries under flag:/segment: keys with their fetch
times, a push that invalidates at once, revalidation past the TTL that costs one small query when
nothing changed, evaluation that never waits for the source, and the last good set while the
source is down (from memory, and after a restart from the last-known-good copy)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sidecar.sources import DatabaseSource, FlagDatabase, open_source
from sidecar.sources.database.dialect import Connection, Dialect
from sidecar.store import FlagStore
from tests import postgres_server
from tests.conftest import eventually

postgres_server.require()

FLAG = {
    "key": "a",
    "enabled": True,
    "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "defaultVariantWhenOn": "on",
    "defaultVariantWhenOff": "off",
}
SEGMENT = {
    "key": "staff",
    "rules": [{"constraints": [{"property": "team", "operation": "ONE_OF", "values": ["staff"]}]}],
}


class CountingDialect:
    """The real dialect, with the statements the database runs through it written down."""

    def __init__(self, inner: Dialect) -> None:
        self._inner = inner
        self.statements: list[str] = []
        self.read_transactions = 0
        self.gate = threading.Event()  # cleared: statements wait (the I/O path held)
        self.gate.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def sql(self, text: str) -> str:
        self.statements.append(text)
        self.gate.wait()
        return self._inner.sql(text)

    def begin_read(self, connection: Connection) -> None:
        self.read_transactions += 1
        self._inner.begin_read(connection)


@dataclass
class Backend:
    """One database the tests run against, with what only its kind can do."""

    kind: str
    uri: str
    stop: Callable[[], None]  # make the database unreachable
    start: Callable[[], None]  # and reachable again
    # Make the source's reads wait (on the counting dialect); returns the release.
    hold: Callable[[CountingDialect], Callable[[], None]]
    opening: Callable[[str], FlagDatabase]  # the `databases` fixture: closed when the test ends

    def database(self) -> FlagDatabase:
        return self.opening(self.uri)


def _sqlite(tmp_path: Path, opening: Callable[[str], FlagDatabase]) -> Backend:
    path = tmp_path / "flags.db"
    aside = tmp_path / "flags.db.aside"

    def stop() -> None:  # the file moved away: the follower's one stat finds it gone
        os.rename(path, aside)

    def start() -> None:
        os.rename(aside, path)

    def hold(dialect: CountingDialect) -> Callable[[], None]:
        # Nothing makes a WAL reader wait on SQLite (that is what WAL is for), short of a slow
        # disk: the statements are held before they reach the database instead.
        dialect.gate.clear()
        return dialect.gate.set

    return Backend("sqlite", f"sqlite://{path}", stop, start, hold, opening)


def _postgresql(server: postgres_server.PostgresServer, opening: Callable[[str], FlagDatabase]) -> Backend:
    uri = postgres_server.fresh_database(server)

    def hold(dialect: CountingDialect) -> Callable[[], None]:
        import psycopg

        # A real lock: the revision query waits in the server.
        blocker = psycopg.connect(uri, autocommit=True)
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE flag_sets IN ACCESS EXCLUSIVE MODE")

        def release() -> None:
            blocker.execute("ROLLBACK")
            blocker.close()

        return release

    return Backend("postgresql", uri, server.stop, server.start, hold, opening)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[postgres_server.PostgresServer]:
    if not postgres_server.available():
        pytest.skip("no pg_ctl (PostgreSQL) found")
    with postgres_server.postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, databases: Callable[[str], FlagDatabase]
) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield _sqlite(tmp_path, databases)
    elif "outage" in request.node.name:  # a server of its own: the test stops it
        if not postgres_server.available():
            pytest.skip("no pg_ctl (PostgreSQL) found")
        with postgres_server.postgres_server() as server:
            yield _postgresql(server, databases)
    else:
        yield _postgresql(request.getfixturevalue("pg_server"), databases)


def _write(database: FlagDatabase, *items: tuple[str, dict[str, Any] | None], actor: str = "alice") -> None:
    """Put (or with None, delete) flags and segments in one write, each as its next version."""
    with database.write("default", actor) as writer:
        for kind, definition in items:
            key = definition["key"] if definition else ""
            version = writer.last_version(kind, key) + 1  # type: ignore[arg-type]
            current = writer.content.flag(key) if kind == "flag" else writer.content.segment(key)
            before = current.definition if current else None
            writer.put(kind, key, definition, version, "update" if current else "create", before)  # type: ignore[arg-type]


def _delete(database: FlagDatabase, kind: str, key: str) -> None:
    with database.write("default", "alice") as writer:
        current = writer.content.flag(key) if kind == "flag" else writer.content.segment(key)
        assert current is not None
        writer.delete(kind, key, writer.last_version(kind, key) + 1, current.definition)  # type: ignore[arg-type]


@pytest.fixture
def seeded(backend: Backend) -> Backend:
    database = backend.database()
    database.migrate()
    _write(database, ("flag", FLAG), ("flag", {**FLAG, "key": "b"}), ("segment", SEGMENT))
    database.close()
    return backend


@pytest.fixture
def stores() -> Iterator[Callable[..., FlagStore]]:
    made: list[FlagStore] = []

    def make(source: DatabaseSource, **options: Any) -> FlagStore:
        store = FlagStore(source, remote=True, **options)
        store.start()
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def _source(backend: Backend, counting: bool = False) -> DatabaseSource:
    database = backend.database()
    if counting:
        database = FlagDatabase(CountingDialect(database.dialect))  # type: ignore[arg-type]
    return DatabaseSource(database, "default")


def _variant(store: FlagStore, key: str = "a") -> str:
    return store.evaluate(key, {"targetingKey": "u1"}).variant


def test_flags_and_segments_are_held_under_their_cache_keys_with_fetch_times(seeded, stores):
    store = stores(_source(seeded), cache_ttl=3600)
    assert store.cache is not None
    entries = store.cache.entries
    assert sorted(entries) == ["flag:a", "flag:b", "segment:staff"]
    assert {key: cached.entry.version for key, cached in entries.items()} == {
        "flag:a": 1,
        "flag:b": 1,
        "segment:staff": 1,
    }
    assert all(cached.fetched_at > 0 for cached in entries.values())
    assert store.cache.revision == store.revision == "1"
    assert _variant(store) == "on"


def test_a_push_invalidates_at_once_and_only_what_changed_is_fetched_again(seeded, stores):
    # A TTL that never passes in the test: what arrives, arrives by the push.
    store = stores(_source(seeded), cache_ttl=3600)
    cache = store.cache
    assert cache is not None
    before = dict(cache.entries)
    _write(seeded.database(), ("flag", {**FLAG, "defaultVariantWhenOn": "off"}))
    eventually(lambda: _variant(store) == "off", timeout=10)
    after = cache.entries
    assert after["flag:a"].entry.version == 2
    assert after["flag:a"].fetched_at > before["flag:a"].fetched_at
    # Untouched entries are the same objects, fetched when they were.
    assert after["flag:b"] is before["flag:b"]
    assert after["segment:staff"] is before["segment:staff"]
    assert store.stats["revalidations_changed"] == 1

    _delete(seeded.database(), "flag", "b")
    eventually(lambda: "flag:b" not in cache.entries, timeout=10)
    assert store.flag_keys() == ["a"]
    assert store.cache.revision == store.revision == "3"


def test_past_the_ttl_an_unchanged_set_costs_one_small_query(seeded, stores):
    source = _source(seeded, counting=True)
    dialect = source.database.dialect
    assert isinstance(dialect, CountingDialect)
    # The source's own answer first: one query, no read transaction.
    source.fetch()
    dialect.statements.clear()
    reads = dialect.read_transactions
    assert source.changes_since("1").unchanged
    [statement] = dialect.statements
    assert statement.startswith("SELECT 'set', '', revision")
    assert dialect.read_transactions == reads

    store = stores(source, cache_ttl=0.2)
    assert store.cache is not None
    # Past the watcher's first look (one revision query of its own) and a first revalidation.
    eventually(lambda: store.stats["revalidations_unchanged"] >= 1, timeout=10)
    validated = store.cache.validated_at
    dialect.statements.clear()
    counted = store.stats["revalidations_unchanged"]
    eventually(lambda: store.stats["revalidations_unchanged"] >= counted + 2, timeout=10)
    assert set(dialect.statements) == {statement}  # the same one query each time
    assert store.cache.validated_at > validated  # the set's age starts over
    assert store.stats["revalidations_changed"] == 0


def test_no_evaluation_waits_while_the_revalidation_waits_for_the_database(seeded, stores):
    source = _source(seeded, counting=True)
    dialect = source.database.dialect
    store = stores(source, cache_ttl=0.2)
    assert isinstance(dialect, CountingDialect)
    release = seeded.hold(dialect)
    try:
        counted = store.stats["revalidations_unchanged"] + store.stats["revalidations_failed"]
        dialect.statements.clear()
        eventually(lambda: dialect.statements, timeout=10)  # a revalidation is in the database
        answers: list[str] = []
        evaluating = threading.Thread(target=lambda: answers.extend(_variant(store) for _ in range(2000)))
        evaluating.start()
        evaluating.join(timeout=60)  # a deadline against a hang, not a measurement
        assert answers == ["on"] * 2000
        # The revalidation was still waiting all along.
        assert store.stats["revalidations_unchanged"] + store.stats["revalidations_failed"] == counted
    finally:
        release()
    eventually(lambda: store.stats["revalidations_unchanged"] > counted, timeout=30)


def test_an_outage_serves_the_last_good_set_and_a_restart_serves_the_copy(seeded, stores, tmp_path):
    state = tmp_path / "state"
    store = stores(_source(seeded), cache_ttl=0.2, state_dir=state)
    assert store.source_status.up
    seeded.stop()
    try:
        eventually(lambda: not store.source_status.up, timeout=20)
        failed = store.stats["revalidations_failed"]
        eventually(lambda: store.stats["revalidations_failed"] > failed, timeout=10)
        assert _variant(store) == "on"  # from memory
        assert store.source_status.age() is not None
        assert any("cannot read" in reason for reason in store.source_status.stale_reasons())
        store.close()

        # A restart during the outage: the last-known-good copy beside the state.
        if seeded.kind == "sqlite":  # a missing file would be created empty: put a broken one there
            Path(seeded.uri.removeprefix("sqlite://")).write_bytes(b"not a database " * 100)
        restarted = stores(_source(seeded), cache_ttl=0.2, state_dir=state)
        assert restarted.source_status.last_known_good
        assert not restarted.source_status.up
        assert _variant(restarted) == "on"
        assert sorted(restarted.flag_keys()) == ["a", "b"]
    finally:
        if seeded.kind == "sqlite":
            Path(seeded.uri.removeprefix("sqlite://")).unlink(missing_ok=True)
        seeded.start()
    # Back: it catches up by itself, and then follows writes again.
    eventually(lambda: not restarted.source_status.last_known_good and restarted.source_status.up, timeout=30)
    _write(seeded.database(), ("flag", {**FLAG, "defaultVariantWhenOn": "off"}))
    eventually(lambda: _variant(restarted) == "off", timeout=10)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # a restore is shown on the file
def test_a_database_that_went_back_is_read_whole(seeded, stores, tmp_path):
    path = Path(seeded.uri.removeprefix("sqlite://"))
    backup = tmp_path / "backup.db"
    shutil.copy(path, backup)
    store = stores(_source(seeded), cache_ttl=3600)
    _write(seeded.database(), ("flag", {**FLAG, "key": "c"}))
    eventually(lambda: "flag:c" in store.cache.entries, timeout=10)
    # Restored from the copy with SQLite's backup API (revision 1 again, docs/admin.md): the cache
    # drops what the database no longer has.
    with sqlite3.connect(backup) as copy, sqlite3.connect(path) as live:
        copy.backup(live)
    eventually(lambda: "flag:c" not in store.cache.entries, timeout=10)
    assert store.revision == "1"


def test_a_database_uri_gives_a_cached_store(seeded):
    source = open_source(seeded.uri)
    store = FlagStore(source, remote=True)
    try:
        assert store.cache is not None
    finally:
        source.close()
