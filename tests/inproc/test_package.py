"""flag-sidecar-client installs on its own: its wheel (built from clients/python, carrying the
repository's engine) goes into a fresh virtual environment with only its dependencies, at the
lock's versions and hashes (pip's warm cache), and there it follows a real control plane,
evaluates, runs the OpenFeature provider and reports its events; none of the server's own
dependencies (health, reflection, Prometheus, YAML, watchdog, cachetools) is installed, and none
of the server's modules is in the wheel."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.inproc.control_plane import Plane, feature_events

REPO = Path(__file__).resolve().parents[2]
# The client's dependencies (clients/python/pyproject.toml), grpcio's own, and the provider's SDK.
CLIENT_REQUIREMENTS = (
    "grpcio",
    "typing-extensions",
    "protobuf",
    "mmh3",
    "google-re2",
    "semver",
    "orjson",
    "openfeature-sdk",
)
SERVER_ONLY = (
    "grpc_health",
    "grpc_reflection",
    "prometheus_client",
    "yaml",
    "watchdog",
    "cachetools",
)

SCRIPT = """
import importlib.util, sys
absent = [name for name in sys.argv[3].split(",") if importlib.util.find_spec(name) is not None]
assert not absent, f"server dependencies installed: {absent}"
for module in ("sidecar.store", "sidecar.server", "sidecar.sources", "sidecar.events", "sidecar.cli"):
    assert importlib.util.find_spec(module) is None, module

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from flagsidecar_client import FlagSidecarClient, Reason
from flagsidecar_client.provider import FlagSidecarProvider

client = FlagSidecarClient(sys.argv[1], events_target=sys.argv[2])
with client:
    staff = client.evaluate("new-checkout", "u1", {"email": "ann@example.com"})
    assert (staff.value, staff.variant, staff.reason) == (True, "on", Reason.TARGETING_MATCH), staff
    assert client.evaluate("search-config", "u1", {"ip": "10.0.0.1"}).variant == "semantic"
    api.set_provider_and_wait(FlagSidecarProvider(client))
    assert api.get_client().get_string_value("banner-color", "none", EvaluationContext("u7")) == "#1f77b4"
    assert client.flush_events(10)
print("in-process from the wheel: ok", sorted(sys.modules.keys() & {"sidecar.engine", "re2"}))
"""


def lock_subset(names: tuple[str, ...]) -> str:
    """The lock's entries (version and hashes) for `names`."""
    text = (REPO / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[a-z0-9][^\s]*==)", text)
    chosen = [
        entry
        for entry in entries
        if re.match(r"([a-z0-9][^=\s]*)==", entry) and entry.split("==")[0] in names
    ]
    assert len(chosen) == len(names), [entry.split("==")[0] for entry in chosen]
    return "\n".join(chosen) + "\n"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO / "clients" / "python"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    (built,) = out.glob("flag_sidecar_client-*.whl")
    return built


def test_the_wheel_carries_the_engine_and_nothing_of_the_server(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (
        "sidecar/engine/compiler.py",
        "sidecar/schema.py",
        "sidecar/syncset.py",
        "flagsidecar/v1/sync_pb2.py",
        "flagsidecar_client/client.py",
    ):
        assert path in names
        if path.startswith(("sidecar/", "flagsidecar/")):
            # The repository's own file, byte for byte: one engine, not a copy that could drift.
            assert zipfile.ZipFile(wheel).read(path) == (REPO / path).read_bytes()
    packages = {name.rsplit("/", 1)[0] for name in names if name.endswith(".py")}
    assert packages == {"sidecar", "sidecar/engine", "flagsidecar", "flagsidecar/v1", "flagsidecar_client"}
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    required = {
        re.split(r"[<>=!~;, ]", line.split(":", 1)[1].strip())[0]
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert required == {"grpcio", "protobuf", "mmh3", "google-re2", "semver", "orjson"}


def test_installed_alone_it_evaluates_against_a_control_plane(wheel: Path, tmp_path: Path):
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(lock_subset(CLIENT_REQUIREMENTS))
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
    ]
    subprocess.run(
        [*pip, "--require-hashes", "-r", str(requirements)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, text=True, timeout=120)

    plane = Plane(tmp_path / "plane")
    try:
        run = subprocess.run(
            [str(python), "-c", SCRIPT, plane.sync_target, plane.events_target, ",".join(SERVER_ONLY)],
            cwd=tmp_path,  # not the repository: nothing of it on the path
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "in-process from the wheel: ok" in run.stdout
        from tests.conftest import eventually

        events = eventually(lambda: len(feature_events(plane)) >= 3 and feature_events(plane), timeout=15)
        assert {e["source"] for e in events} == {"PROVIDER_CACHE"}
    finally:
        plane.stop()
