"""FileRepository's change check: the digest of the bytes, read in chunks."""

import hashlib

import pytest

from sidecar.store import FileRepository
from sidecar.store.file_repository import _sha1_of_file


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 300_001])
def test_chunked_digest_is_the_digest_of_the_whole_file(tmp_path, size):
    path = tmp_path / "flags.yaml"
    path.write_bytes(bytes(i % 251 for i in range(size)))
    assert _sha1_of_file(path) == hashlib.sha1(path.read_bytes()).hexdigest()


def test_changed_compares_the_bytes_with_the_last_load(tmp_path):
    path = tmp_path / "flags.yaml"
    text = "flags:\n  - key: a\n    enabled: true\n    variants: [{key: 'on', value: true}]\n"
    path.write_text(text + "#" * 100_000)
    repository = FileRepository(path)
    repository.load()
    assert not repository.changed()
    path.write_text(text + "#" * 99_999 + "!")
    assert repository.changed()
    path.unlink()
    assert not repository.changed()  # a missing file counts as unchanged
