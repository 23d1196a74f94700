"""Flag versions survive a restart when the store has a state directory (--state-dir)."""

import json
import logging

import pytest

from sidecar.sources import JSON, Document, FileSource
from sidecar.store import FlagStore, StateDirLockedError
from sidecar.store.versions import STATE_FILE

from .conftest import flag, write_flags


def versions(store: FlagStore) -> dict[str, int]:
    return {key: flag.version for key, flag in store.flag_set.flags.items()}


def started(path, state_dir) -> FlagStore:
    store = FlagStore(FileSource(path), state_dir=state_dir)
    store._versions.open()
    store._reload(initial=True)  # no watcher: the tests edit and reload themselves
    return store


def test_versions_survive_a_restart(tmp_path):
    path, state = tmp_path / "flags.yaml", tmp_path / "state"
    write_flags(path, [flag("a"), flag("b")])
    store = started(path, state)
    write_flags(path, [flag("a", default="on"), flag("b")])
    assert store.reload()
    assert versions(store) == {"a": 2, "b": 1}
    store.close()

    again = started(path, state)  # the same file: the same numbers, not 1 again
    assert versions(again) == {"a": 2, "b": 1}
    again.close()

    write_flags(path, [flag("a"), flag("b", default="on")])  # edited while no sidecar ran
    third = started(path, state)
    assert versions(third) == {"a": 3, "b": 2}, "a changed definition never gets an old number"
    third.close()


def test_without_a_state_dir_versions_start_again_at_1(tmp_path):
    path = tmp_path / "flags.yaml"
    write_flags(path, [flag("a")])
    store = started(path, None)
    write_flags(path, [flag("a", default="on")])
    store.reload()
    store.close()
    assert versions(started(path, None)) == {"a": 1}


def test_a_removed_flag_comes_back_with_a_new_number_after_a_restart(tmp_path):
    path, state = tmp_path / "flags.yaml", tmp_path / "state"
    write_flags(path, [flag("a"), flag("b")])
    store = started(path, state)
    write_flags(path, [flag("b")])
    store.reload()
    store.close()
    write_flags(path, [flag("a", default="on"), flag("b")])
    assert versions(started(path, state))["a"] == 2


def test_an_explicit_version_field_wins_and_is_counted_on_from(tmp_path):
    path, state = tmp_path / "flags.yaml", tmp_path / "state"
    write_flags(path, [{**flag("a"), "version": 7}])
    store = started(path, state)
    assert versions(store) == {"a": 7}
    write_flags(path, [flag("a")])  # the field removed: the count goes on, never back to 1
    store.reload()
    assert versions(store) == {"a": 8}
    store.close()


def test_versions_a_source_keeps_itself_are_used(tmp_path):
    text = json.dumps({"flags": [flag("a"), flag("b")]}).encode()

    class Versioned:
        origin = "db:"

        def fetch(self) -> Document:
            return Document(text, JSON, "rev-9", self.origin, versions={"a": 41})

        def watch(self, listener) -> None: ...

        def close(self) -> None: ...

    store = FlagStore(Versioned(), state_dir=tmp_path / "state")
    store.start()
    assert versions(store) == {"a": 41, "b": 1}
    assert store.revision == "rev-9"
    store.close()


def test_the_state_file_is_replaced_whole(tmp_path):
    path, state = tmp_path / "flags.yaml", tmp_path / "state"
    write_flags(path, [flag("a")])
    store = started(path, state)
    saved = json.loads((state / STATE_FILE).read_text())
    assert saved["flags"]["a"]["version"] == 1
    assert sorted(p.name for p in state.iterdir()) == ["flag-versions.json", "flag-versions.lock"]
    store.close()


def test_a_state_dir_belongs_to_one_process_at_a_time(tmp_path):
    path, state = tmp_path / "flags.yaml", tmp_path / "state"
    write_flags(path, [flag("a")])
    first = started(path, state)
    with pytest.raises(StateDirLockedError, match="is in use by another process"):
        FlagStore(FileSource(path), state_dir=state).start()
    first.close()
    started(path, state).close()  # free again once the first store closed


def test_an_unreadable_state_file_is_set_aside_and_counting_starts_afresh(tmp_path, caplog):
    path, state = tmp_path / "flags.yaml", tmp_path / "state"
    write_flags(path, [flag("a")])
    state.mkdir()
    (state / STATE_FILE).write_text('{"format": 1, "flags": {"a": {"version": "x"')
    with caplog.at_level(logging.ERROR):
        store = started(path, state)
    assert versions(store) == {"a": 1}
    assert (state / (STATE_FILE + ".unreadable")).exists()
    assert any(r.__dict__.get("event") == "flag_versions_unreadable" for r in caplog.records)
    store.close()


def test_a_failed_save_is_logged_and_the_set_still_served(tmp_path, monkeypatch, caplog):
    path, state = tmp_path / "flags.yaml", tmp_path / "state"
    write_flags(path, [flag("a")])
    store = started(path, state)

    def full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store._versions, "_write", full)
    write_flags(path, [flag("a", default="on"), flag("b")])
    with caplog.at_level(logging.ERROR):
        assert store.reload()
    assert versions(store) == {"a": 2, "b": 1}
    (record,) = [r for r in caplog.records if r.__dict__.get("event") == "flag_versions_not_saved"]
    assert "No space left on device" in record.getMessage()
    store.close()
