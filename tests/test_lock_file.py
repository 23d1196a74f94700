"""requirements.lock pins, with hashes, a version inside every range pyproject.toml declares."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from requirements.lock."""
    text = (ROOT / "requirements.lock").read_text()
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;\\]+)", block)
        if match:
            entries[canonicalize_name(match[1])] = (
                match[2],
                re.findall(r"--hash=sha256:([0-9a-f]{64})", block),
            )
    return entries


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return [Requirement(text) for text in requirements]


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside {requirement}: run `make lock`"
        )


def test_every_pin_has_hashes_and_the_build_backend_is_pinned_too():
    pins = locked()
    assert all(hashes for _, hashes in pins.values())
    assert "setuptools" in pins  # the editable install builds without isolation, from the lock


def test_make_installs_from_the_lock_with_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r requirements.lock" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile
