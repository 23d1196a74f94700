from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.sources import FileSource
from sidecar.store import FlagStore


@pytest.fixture
def store(sample_flag_file: Path) -> Iterator[FlagStore]:
    store = FlagStore(FileSource(sample_flag_file))
    store.start()
    yield store
    store.close()
