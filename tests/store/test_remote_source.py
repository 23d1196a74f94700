"""The store over a remote source (the HTTP source against a real local server): 304s cost nothing,
changes are applied, failures and broken documents keep the last good set serving and are
reported (source health), and the last-known-good copy serves a start during an outage."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sidecar.engine import FlagSetError
from sidecar.sources.http import HttpSource
from sidecar.store import LAST_KNOWN_GOOD_FILE, FlagStore
from tests.conftest import eventually
from tests.sources.flag_server import FlagServer
from tests.store.conftest import flag

POLL = 0.05
TIMEOUT = 2.0


def document(*keys: str, default: str = "off") -> dict:
    return {"flags": [flag(key, default=default) for key in keys], "segments": []}


@pytest.fixture
def server():
    server = FlagServer(document("a", "b")).start()
    yield server
    server.stop()


@pytest.fixture
def make_store(tmp_path):
    stores: list[FlagStore] = []

    def make(
        server: FlagServer, state_dir: Path | None = tmp_path / "state", start: bool = True
    ) -> FlagStore:
        # A timeout a loaded machine (three pytest workers, two cores) does not reach by accident.
        source = HttpSource(urlsplit(server.url), poll_interval=POLL, timeout=TIMEOUT)
        store = FlagStore(source, state_dir=state_dir, remote=True)
        stores.append(store)
        if start:
            store.start()
        return store

    yield make
    for store in stores:
        store.close()


def variant(store: FlagStore, key: str) -> str | None:
    return store.evaluate(key, {"$userId": "u"}).variant


def test_a_304_costs_no_reload_and_no_log_line_but_keeps_the_set_current(server, make_store, caplog):
    store = make_store(server)
    eventually(lambda: server.answered[304] >= 1)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    current_at = store.source_status.current_at
    eventually(lambda: server.answered[304] >= 5)
    assert store.stats["reloads"] == 1  # the first load only
    assert store.stats["rejected_reloads"] == 0
    assert [r for r in caplog.records if r.name.startswith("sidecar")] == []
    assert store.source_status.current_at > current_at  # revalidated: the set's age starts over
    assert store.source_status.up


def test_a_changed_etag_applies_the_new_set(server, make_store):
    store = make_store(server)
    revision = store.revision
    assert sorted(store.flag_keys()) == ["a", "b"]
    server.serve(document("a", "c", default="on"))
    eventually(lambda: sorted(store.flag_keys()) == ["a", "c"])
    assert store.revision == server.etag != revision
    assert variant(store, "a") == "on"
    eventually(lambda: store.stats["reloads"] == 2)  # counted just after the swap


def test_a_broken_document_is_rejected_with_every_problem_and_the_last_good_set_serves(
    server, make_store, caplog
):
    store = make_store(server)
    broken = document("a")
    broken["flags"][0]["defaultVariantWhenOn"] = "missing"
    broken["flags"].append({"key": "x", "variants": [{"key": True, "value": 1}]})
    server.serve(broken)
    eventually(lambda: store.stats["rejected_reloads"] == 1)
    [rejected] = [r for r in caplog.records if getattr(r, "event", None) == "flags_rejected"]
    assert len(rejected.problems) >= 2
    assert any("names unknown variant 'missing'" in p for p in rejected.problems)
    assert any("boolean" in p for p in rejected.problems)
    assert sorted(store.flag_keys()) == ["a", "b"]  # the last good set
    status = store.source_status
    assert status.up
    assert status.behind
    # Polled again and again (304s), the broken document is not judged again.
    polls = server.answered[304]
    eventually(lambda: server.answered[304] >= polls + 3)
    assert store.stats["rejected_reloads"] == 1
    assert any("rejected" in reason for reason in store.source_status.stale_reasons())
    server.serve(document("a", "b", "d"))
    eventually(lambda: "d" in store.flag_keys())
    eventually(lambda: not store.source_status.behind)  # noted just after the swap


@pytest.mark.parametrize("failure", ["status 500", "stopped", "timeout"])
def test_an_outage_is_reported_once_keeps_serving_and_is_caught_up(server, make_store, caplog, failure):
    store = make_store(server)
    caplog.set_level(logging.INFO)
    if failure == "status 500":
        server.status = 500
    elif failure == "stopped":
        server.stop()
    else:
        server.delay = TIMEOUT * 2
    eventually(lambda: not store.source_status.up, timeout=TIMEOUT * 4)
    assert variant(store, "a") == "off"  # still served
    status = store.source_status
    assert status.reason
    assert status.down_since is not None
    assert status.stale_reasons()[0].startswith(f"flag source {server.url} cannot be had: ")
    assert "(since 20" in status.stale_reasons()[0]
    assert store.stats["source_lost"] == 1
    if failure == "stopped":
        server.serve(document("a", default="on"))
        server.start()
    else:
        server.status, server.delay = None, 0.0
        server.serve(document("a", default="on"))
    eventually(lambda: variant(store, "a") == "on", timeout=10)
    assert store.source_status.up
    eventually(lambda: store.source_status.stale_reasons() == [])  # noted just after the swap
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("flag_source_unavailable") == 1
    assert events.count("flag_source_available") == 1
    assert store.stats["source_lost"] == 1


def test_evaluation_never_waits_on_a_request_in_flight(server, make_store):
    store = make_store(server)
    server.gate = threading.Event()  # the next poll is held inside the server
    try:
        assert server.waiting.wait(5)
        # The poll thread is mid-request (holding the source's lock): answers come all the same.
        assert {variant(store, "a") for _ in range(1_000)} == {"off"}
        assert store.evaluate_all({"$userId": "u"})[0].variant == "off"
        assert server.waiting.is_set()  # still held
    finally:
        server.gate.set()


def test_every_applied_document_is_kept_as_the_last_known_good_copy(server, make_store, tmp_path):
    store = make_store(server)
    path = tmp_path / "state" / LAST_KNOWN_GOOD_FILE
    head, _, data = path.read_bytes().partition(b"\n")
    header = json.loads(head)
    assert data == server._body
    assert header["revision"] == server.etag == store.revision
    assert header["origin"] == server.url
    assert header["documentFormat"] == "yaml"
    server.serve(document("z"))
    eventually(lambda: json.loads(path.read_bytes().partition(b"\n")[0])["revision"] == server.etag)
    assert not list((tmp_path / "state").glob(".*"))  # no temporary file left behind


def test_a_start_during_an_outage_serves_the_last_known_good_copy_and_catches_up(server, make_store, caplog):
    first = make_store(server)
    first.close()  # releases the state directory
    server.stop()
    caplog.set_level(logging.INFO)
    store = make_store(server)
    assert store.ready
    assert sorted(store.flag_keys()) == ["a", "b"]
    status = store.source_status
    assert not status.up
    assert status.last_known_good
    assert "cannot connect" in status.reason
    assert status.age() is not None
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "flags_from_last_known_good"]
    assert "serving the last known good copy (2 flags" in line.getMessage()
    server.serve(document("a", "new"))
    server.start()
    eventually(lambda: "new" in store.flag_keys(), timeout=10)
    eventually(lambda: not store.source_status.last_known_good)  # noted just after the swap
    status = store.source_status
    assert status.up
    assert not status.last_known_good
    assert status.stale_reasons() == []


def test_a_start_with_a_broken_document_serves_the_last_known_good_copy(server, make_store):
    make_store(server).close()
    server.serve("flags: [")
    store = make_store(server)
    assert sorted(store.flag_keys()) == ["a", "b"]
    status = store.source_status
    assert status.up
    assert status.last_known_good
    assert status.behind
    assert store.stats["rejected_reloads"] == 1


def test_without_a_copy_a_start_during_an_outage_fails(server, make_store):
    server.stop()
    store = make_store(server, start=False)
    with pytest.raises(OSError, match="cannot connect"):
        store.start()
    server.serve("flags: [")
    server.start()
    with pytest.raises(FlagSetError):
        make_store(server, state_dir=None)


def test_a_copy_of_another_source_is_not_used(server, make_store, tmp_path, caplog):
    make_store(server).close()
    other = FlagServer(document("o"), path="/other.yaml").start()
    other.stop()
    with pytest.raises(OSError, match="cannot connect"):
        make_store(other)
    assert any(getattr(r, "event", None) == "last_known_good_other_origin" for r in caplog.records)


def test_a_damaged_copy_is_reported_and_not_used(server, make_store, tmp_path, caplog):
    make_store(server).close()
    path = tmp_path / "state" / LAST_KNOWN_GOOD_FILE
    path.write_bytes(path.read_bytes()[:-3])
    server.stop()
    with pytest.raises(OSError, match="cannot connect"):
        make_store(server)
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "last_known_good_unreadable"]
    assert "does not match its size and checksum" in record.getMessage()
