"""Builds flag-sidecar-client's wheel with the repository's engine in it (see pyproject.toml).

The shared modules are not copied into this directory (there is one copy of the engine, in
sidecar/engine): build_py adds them to the build from the repository, so a wheel built from a
checkout runs exactly the code the server runs. Built anywhere else (an sdist unpacked alone),
it stops and says so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

REPO = Path(__file__).resolve().parents[2]
# Files taken from the repository, relative to its root: the engine, the schema conversion, the
# held Watch set, and the generated messages (with their stubs and py.typed).
SHARED = (
    "sidecar/__init__.py",
    "sidecar/py.typed",
    "sidecar/schema.py",
    "sidecar/syncset.py",
    "sidecar/engine/*.py",
    "flagsidecar/__init__.py",
    "flagsidecar/v1/*.py",
    "flagsidecar/v1/*.pyi",
)


def shared_files() -> list[Path]:
    files = [path for pattern in SHARED for path in sorted(REPO.glob(pattern))]
    if not (REPO / "sidecar" / "engine" / "__init__.py").is_file():
        raise SystemExit(
            f"flag-sidecar-client is built from a checkout of the flag-sidecar repository: "
            f"{REPO / 'sidecar' / 'engine'} is missing (pip wheel clients/python from the repository root)"
        )
    return files


class BuildWithEngine(build_py):
    def run(self) -> None:
        super().run()
        for path in shared_files():
            target = Path(self.build_lib) / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


setup(cmdclass={"build_py": BuildWithEngine})
