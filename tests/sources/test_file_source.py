"""FileSource's change check: a stat while the file is settled, else the digest of the bytes."""

import hashlib
import os
import time
from pathlib import Path

import pytest

from sidecar.sources import FileSource
from sidecar.sources import file as file_source
from sidecar.sources.file import _sha1_of_file

FLAG_TEXT = "flags:\n  - key: a\n    enabled: true\n    variants: [{key: 'on', value: true}]\n"


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 300_001])
def test_chunked_digest_is_the_digest_of_the_whole_file(tmp_path, size):
    path = tmp_path / "flags.yaml"
    path.write_bytes(bytes(i % 251 for i in range(size)))
    assert _sha1_of_file(path) == hashlib.sha1(path.read_bytes()).hexdigest()


def test_changed_compares_the_bytes_with_the_last_load(tmp_path):
    path = tmp_path / "flags.yaml"
    text = FLAG_TEXT
    path.write_text(text + "#" * 100_000)
    repository = FileSource(path)
    repository.fetch()
    assert not repository.changed()
    path.write_text(text + "#" * 99_999 + "!")
    assert repository.changed()
    path.unlink()
    assert not repository.changed()  # a missing file counts as unchanged


class CountingReads:
    """Stands in for _sha1_of_file and counts the files it reads."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self, path):
        self.reads += 1
        return _sha1_of_file(path)


@pytest.fixture
def reads(monkeypatch) -> CountingReads:
    counting = CountingReads()
    monkeypatch.setattr(file_source, "_sha1_of_file", counting)
    return counting


def loaded(tmp_path, age: float = 0.0, poll_interval: float = 1.0) -> tuple[Path, FileSource]:
    """A flag file, `age` seconds old when a FileSource loads it."""
    path = tmp_path / "flags.yaml"
    path.write_text(FLAG_TEXT)
    time.sleep(age)
    repository = FileSource(path, poll_interval)
    repository.fetch()
    return path, repository


def test_a_settled_unchanged_file_costs_a_stat_not_a_read(tmp_path, monkeypatch, reads):
    monkeypatch.setattr(file_source, "RACY_SECONDS", 0.0)
    path, repository = loaded(tmp_path, age=0.01)  # older than the (zero) racy window
    for _ in range(5):
        assert not repository.changed()
    assert reads.reads == 0
    path.write_text(FLAG_TEXT.replace("true", "True"))  # new signature: read, and found different
    assert repository.changed()
    assert reads.reads == 1


def test_a_touch_is_read_once_then_trusted(tmp_path, monkeypatch, reads):
    monkeypatch.setattr(file_source, "RACY_SECONDS", 0.0)
    path, repository = loaded(tmp_path)
    time.sleep(0.01)
    os.utime(path)  # new times, same bytes
    time.sleep(0.01)
    assert not repository.changed()
    assert not repository.changed()
    assert reads.reads == 1


def test_a_same_size_rewrite_within_the_timestamp_tick_is_still_seen(tmp_path, monkeypatch, reads):
    # Coarse timestamps, at their worst: the signature cannot tell the two versions apart at all.
    monkeypatch.setattr(file_source, "_signature", lambda stat: (stat.st_dev, stat.st_ino, stat.st_size))
    path, repository = loaded(tmp_path)
    assert not repository.changed()  # racy: read, same bytes
    with path.open("r+") as file:  # in place: same inode, same size
        file.write(FLAG_TEXT.replace("key: a", "key: b"))
    assert repository.changed()
    assert reads.reads == 2


def test_a_racy_file_is_trusted_once_it_has_been_quiet_long_enough(tmp_path, monkeypatch, reads):
    monkeypatch.setattr(file_source, "RACY_SECONDS", 0.2)
    _, repository = loaded(tmp_path)
    assert not repository.changed()  # modified just now: read
    time.sleep(0.3)
    assert not repository.changed()  # quiet for longer than the window now: read once more, then trusted
    assert not repository.changed()
    assert reads.reads == 2


def test_the_watcher_is_not_woken_by_its_own_reads(tmp_path, reads):
    # Just written, so racy: each check reads the file, and a read opens and closes it.
    _, repository = loaded(tmp_path, poll_interval=60)
    repository.watch(lambda: None)
    try:
        time.sleep(0.3)  # the observer is up
        (tmp_path / "neighbour.txt").write_text("x")  # one event in the directory: one check
        time.sleep(1.0)
    finally:
        repository.close()
    # Once or twice (events may straddle the 50 ms settle); woken by its own reads it read the
    # file again every 50 ms, about 20 times here.
    assert 1 <= reads.reads <= 3


class Arrivals:
    """A FileSource listener that notes when each change is reported."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def changed(self) -> None:
        self.times.append(time.monotonic())

    def after(self, written: float) -> float:
        """Seconds from `written` to the first report (waiting up to 10 s for it)."""
        deadline = written + 10
        while not self.times and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.times, "no change reported"
        return self.times[0] - written

    def lost(self, event: str, message: str) -> None:
        pass

    def regained(self, event: str, message: str) -> None:
        pass

    def confirmed(self, revision: str) -> None:
        pass


def watched(tmp_path, monkeypatch, settle: float) -> tuple[Path, FileSource, Arrivals]:
    monkeypatch.setattr(file_source, "SETTLE_SECONDS", settle)
    path, repository = loaded(tmp_path, poll_interval=60)
    arrivals = Arrivals()
    repository.watch(arrivals)
    time.sleep(0.3)  # the observer is up
    return path, repository, arrivals


def test_a_file_renamed_into_place_is_read_at_once(tmp_path, monkeypatch):
    # A settle wait long enough that only the rename's own path can report the change before it.
    path, repository, arrivals = watched(tmp_path, monkeypatch, settle=2.0)
    try:
        temporary = tmp_path / "flags.yaml.tmp"
        temporary.write_text(FLAG_TEXT.replace("key: a", "key: b"))
        written = time.monotonic()
        os.replace(temporary, path)
        assert arrivals.after(written) < file_source.SETTLE_SECONDS
        assert repository.fetch().data == FLAG_TEXT.replace("key: a", "key: b").encode()
    finally:
        repository.close()


def test_a_configmap_link_renamed_over_is_read_at_once(tmp_path, monkeypatch):
    mount = tmp_path / "mount"
    (mount / "..2026_01").mkdir(parents=True)
    (mount / "..2026_01" / "flags.yaml").write_text(FLAG_TEXT)
    os.symlink("..2026_01", mount / "..data")
    os.symlink("..data/flags.yaml", mount / "flags.yaml")
    monkeypatch.setattr(file_source, "SETTLE_SECONDS", 2.0)
    repository = FileSource(mount / "flags.yaml", poll_interval=60)
    repository.fetch()
    arrivals = Arrivals()
    repository.watch(arrivals)
    try:
        time.sleep(0.3)
        (mount / "..2026_02").mkdir()
        (mount / "..2026_02" / "flags.yaml").write_text(FLAG_TEXT.replace("key: a", "key: b"))
        os.symlink("..2026_02", mount / "..data_tmp")
        written = time.monotonic()
        os.replace(mount / "..data_tmp", mount / "..data")
        assert arrivals.after(written) < file_source.SETTLE_SECONDS
    finally:
        repository.close()


def test_a_file_written_in_place_still_waits_to_settle(tmp_path, monkeypatch):
    path, repository, arrivals = watched(tmp_path, monkeypatch, settle=1.0)
    try:
        written = time.monotonic()
        path.write_text(FLAG_TEXT.replace("key: a", "key: b"))
        # The burst wait and the second read, SETTLE_SECONDS each, came first.
        assert arrivals.after(written) >= 2 * file_source.SETTLE_SECONDS
    finally:
        repository.close()
