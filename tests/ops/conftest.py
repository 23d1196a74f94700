from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.store import FileRepository, FlagStore


@pytest.fixture
def store(sample_flag_file: Path) -> Iterator[FlagStore]:
    store = FlagStore(FileRepository(sample_flag_file))
    store.start()
    yield store
    store.close()
