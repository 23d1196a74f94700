import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sidecar.sources import FileSource
from sidecar.store import FlagStore


def wait_until(condition: Callable[[], object], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def flag(key: str, rules=None, enabled=True, variants=("on", "off"), default="off") -> dict:
    return {
        "key": key,
        "enabled": enabled,
        "variants": [{"key": v, "value": v == "on"} for v in variants],
        "defaultVariantWhenOn": default,
        "defaultVariantWhenOff": default,
        "rules": rules or [],
    }


def write_flags(path: Path, flags: list[dict], segments: list[dict] | None = None) -> None:
    """Replace the file atomically, as a careful editor or a deploy tool does."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"flags": flags, "segments": segments or []}, sort_keys=False))
    tmp.replace(path)


@pytest.fixture
def flag_file(tmp_path) -> Path:
    path = tmp_path / "flags.yaml"
    write_flags(path, [flag("a"), flag("b")])
    return path


@pytest.fixture
def make_store():
    stores: list[FlagStore] = []

    def make(path: Path, **options) -> FlagStore:
        store = FlagStore(FileSource(path, poll_interval=0.2), **options)
        store.start()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()
