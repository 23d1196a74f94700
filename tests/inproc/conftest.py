"""The in-process client's tests: a real control plane per test (`plane`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.inproc.control_plane import Plane


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    running = Plane(tmp_path)
    yield running
    running.stop()
