"""SourceHealth: what the store knows of its source, for /readyz, health and metrics."""

from __future__ import annotations

from sidecar.store import SourceHealth
from tests.conftest import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_up_and_down_with_the_time_it_went_down_and_one_notice_per_change():
    clock, heard = Clock(), []
    health = SourceHealth(clock)
    health.subscribe(lambda status: heard.append(status.up))
    health.applied()
    assert health.status.up
    assert health.status.current_at == 1_000.0
    clock.now = 1_010.0
    health.lost("flag source x cannot be had: timed out")
    clock.now = 1_020.0
    health.lost("flag source x cannot be had: refused")  # still down: the first time stays
    status = health.status
    assert (status.up, status.down_since, status.reason) == (
        False,
        1_010.0,
        "flag source x cannot be had: refused",
    )
    assert status.age(1_030.0) == 30.0
    assert status.stale_reasons(1_030.0) == [
        "flag source x cannot be had: refused (since 1970-01-01T00:16:50Z)",
        "the served set was last current 30s ago",
    ]
    health.regained()
    health.confirmed()
    assert health.status.up
    assert health.status.stale_reasons() == []
    assert health.status.current_at == 1_020.0
    assert heard == [False, True]


def test_a_rejected_document_leaves_the_set_behind_until_one_is_applied():
    health = SourceHealth(Clock())
    health.applied()
    health.rejected()
    assert health.status.up
    assert health.status.behind
    assert "the source's latest document was rejected" in health.status.stale_reasons()
    health.applied()
    assert not health.status.behind


def test_the_last_known_good_copy_is_as_old_as_its_save():
    clock = Clock()
    health = SourceHealth(clock)
    health.from_last_known_good(saved_at=400.0, down="flag source x cannot be had: refused")
    status = health.status
    assert not status.up
    assert status.last_known_good
    assert status.age(1_000.0) == 600.0
    health.applied()
    assert not health.status.last_known_good


def test_a_listener_that_fails_does_not_stop_the_others():
    health, heard = SourceHealth(Clock()), []
    health.subscribe(lambda status: 1 / 0)
    unsubscribe = health.subscribe(lambda status: heard.append(status.up))
    health.lost("down")
    unsubscribe()
    health.regained()
    assert heard == [False]


def test_a_deleted_flag_file_is_a_source_that_is_down(flag_file, make_store):
    store = make_store(flag_file)
    assert store.source_status.up
    assert not store.remote
    content = flag_file.read_bytes()
    flag_file.unlink()
    eventually(lambda: not store.source_status.up)
    assert store.source_status.reason == f"flag file {flag_file} deleted"
    flag_file.write_bytes(content)
    eventually(lambda: store.source_status.up)
