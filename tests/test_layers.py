"""DESIGN.md's layer rules hold: the import-linter contracts in pyproject.toml are kept, and they
do catch each kind of import they exist to forbid (checked on a copy of the code with one bad
import added)."""

import contextlib
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("sidecar", "flagsidecar", "flagd", "clients/python/flagsidecar_client")


def lint_imports(root: Path, *contract_ids: str) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first, so that the packages under root are analysed and not the installed ones.
    env = {**os.environ, "PYTHONPATH": str(root)}
    only = [arg for contract_id in contract_ids for arg in ("--contract", contract_id)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *only],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def contracts() -> dict[str, dict]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return {c["id"]: c for c in tomllib.load(f)["tool"]["importlinter"]["contracts"]}


@pytest.fixture(scope="module")
def copy_of_the_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and pyproject.toml, copied once; each test restores what it changes."""
    root = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, root / Path(package).name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", root)
    return root


@contextlib.contextmanager
def one_more_import(root: Path, path: str, statement: str) -> Iterator[None]:
    target = root / path
    created = not target.parent.exists()
    if created:
        target.parent.mkdir()
        (target.parent / "__init__.py").write_text("")
    original = target.read_bytes() if target.exists() else b""
    target.write_bytes(original + f"\n{statement}\n".encode())
    try:
        yield
    finally:
        if created:
            shutil.rmtree(target.parent)
        else:
            target.write_bytes(original)


def test_the_code_keeps_every_layer_contract():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout, result.stdout


# (file to add the import to, the import, the id of the contract it breaks). Files under
# sidecar/sources/ are created, as that package may not exist yet.
VIOLATIONS = [
    ("sidecar/engine/model.py", "import sidecar.store.cache_keys", "engine"),
    ("sidecar/engine/model.py", "from sidecar.events import feature_event", "engine"),
    ("sidecar/engine/compiler.py", "from sidecar.server import convert", "engine"),
    ("sidecar/engine/compiler.py", "import sidecar.config", "engine"),
    ("sidecar/engine/operators.py", "import grpc", "engine"),
    ("sidecar/engine/operators.py", "from flagsidecar.v1 import evaluation_pb2", "engine"),
    ("sidecar/engine/definitions.py", "from sidecar import schema", "engine"),
    ("sidecar/schema.py", "from sidecar.store import FlagStore", "schema"),
    ("sidecar/schema.py", "from sidecar.server import convert", "schema"),
    ("sidecar/schema.py", "import grpc", "schema"),
    ("sidecar/store/cache_keys.py", "from sidecar.server import limits", "store"),
    ("sidecar/store/cache_keys.py", "import grpc", "store"),
    ("sidecar/store/flag_store.py", "from flagd.evaluation.v1 import evaluation_pb2", "store"),
    ("sidecar/events/options.py", "from sidecar.store import FlagStore", "events"),
    ("sidecar/events/options.py", "from sidecar.server import app", "events"),
    ("sidecar/events/spool.py", "from sidecar.engine.compiler import FlagSet", "events"),
    ("sidecar/events/spool.py", "from sidecar.engine import evaluate", "events"),
    ("sidecar/events/scheduler.py", "import grpc", "events"),
    ("sidecar/events/scheduler.py", "from flagsidecar.v1 import event_pb2", "events"),
    ("sidecar/sources/file.py", "from sidecar.engine import compile_flag_set", "sources"),
    ("sidecar/sources/file.py", "from sidecar.store import FlagStore", "sources"),
    ("sidecar/sources/file.py", "from sidecar.server import app", "sources"),
    # Only the grpc:// source (upstream.py) is a gRPC client, and even it never knows the server.
    ("sidecar/sources/file.py", "import grpc", "sources"),
    ("sidecar/sources/file.py", "from flagsidecar.v1 import sync_pb2", "sources"),
    ("sidecar/sources/file.py", "from sidecar import schema", "sources"),
    ("sidecar/sources/upstream.py", "from sidecar.server.sync import SyncServer", "sources"),
    ("sidecar/sources/upstream.py", "from sidecar.store import FlagStore", "sources"),
    ("sidecar/syncset.py", "import grpc", "syncset"),
    ("sidecar/syncset.py", "from sidecar.engine import evaluate", "syncset"),
    ("flagsidecar_client/client.py", "from sidecar.store import FlagStore", "client"),
    ("flagsidecar_client/reporter.py", "from sidecar.events import FeatureEvent", "client"),
    ("flagsidecar_client/follower.py", "from sidecar.sources import upstream", "client"),
    ("flagsidecar_client/provider.py", "import yaml", "client"),
    ("sidecar/store/flag_store.py", "from sidecar import cli", "composition-root"),
    ("sidecar/server/convert.py", "import sidecar.cli", "composition-root"),
    ("flagsidecar/v1/evaluation_pb2.py", "import sidecar.engine", "generated-code"),
    ("sidecar/server/listeners.py", "from sidecar.app import settings", "composition-root"),
    ("sidecar/sources/settings.py", "import sidecar.app.runtime", "composition-root"),
    # The option machinery reads options for a Settings class it is given; it knows no component.
    ("sidecar/config.py", "from sidecar.server.flagd import mapping", "config"),
    ("sidecar/config_file.py", "import sidecar.store", "config"),
    ("sidecar/options.py", "import grpc", "config"),
    # Cycles, also through a function-level import: config <-> config_file, a layer <-> another.
    ("sidecar/config_file.py", "def f():\n    from sidecar import config", "acyclic"),
    ("sidecar/options.py", "import sidecar.config", "acyclic"),
    ("sidecar/store/flag_store.py", "def f():\n    import sidecar.server.limits", "acyclic"),
]


@pytest.mark.parametrize(("path", "statement", "contract"), VIOLATIONS)
def test_a_forbidden_import_breaks_its_contract(copy_of_the_code, path, statement, contract):
    with one_more_import(copy_of_the_code, path, statement):
        result = lint_imports(copy_of_the_code, contract)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout, result.stdout


def test_the_events_layer_may_name_the_engines_result_record(copy_of_the_code):
    # The one allowed reach from events into the engine (DESIGN: events are fed evaluation
    # results): a real import of sidecar.engine.model, not only the TYPE_CHECKING one of today.
    # Run on the unchanged copy as well, this shows the copy itself keeps every contract.
    with one_more_import(
        copy_of_the_code, "sidecar/events/spool.py", "from sidecar.engine.model import Evaluation"
    ):
        result = lint_imports(copy_of_the_code)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sources_contracts_cover_the_sources_package():
    # `sidecar.sources.**` matches the package's modules, not its __init__: it keeps the contracts
    # valid while the package does not exist; once it does, the package itself must be named.
    exists = (REPO / "sidecar" / "sources").is_dir()
    expected = "sidecar.sources" if exists else "sidecar.sources.**"
    assert expected in contracts()["sources"]["source_modules"], (
        f"sidecar/sources {'exists' if exists else 'does not exist'}: list {expected!r} in the "
        "sources contract's source_modules in pyproject.toml"
    )
    for contract_id in ("engine", "events", "composition-root"):
        listed = contracts()[contract_id]
        assert expected in listed["forbidden_modules"] + listed["source_modules"], (
            f"the {contract_id} contract: list {expected!r}"
        )
