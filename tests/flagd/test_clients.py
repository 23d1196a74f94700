"""The real OpenFeature flagd providers (Python and Node, RPC resolver) against a running sidecar.

Each client runs in its own process (clients/py_client.py, node/client.mjs): it waits for READY,
runs the checks of clients/checks.json, edits the flag file, waits for
PROVIDER_CONFIGURATION_CHANGED and prints a JSON report, which must match expectations.py.
The Node dependencies come from the committed package-lock.json (`npm ci`, also run by `make test`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_flag_file

from . import expectations
from . import flags as test_flags

HERE = Path(__file__).parent
NODE_DIR = HERE / "node"
CLIENT_TIMEOUT = 45


def run_client(command: list[str], port: int, flag_file: Path, tmp_path: Path) -> dict[str, Any]:
    changed = write_flag_file(tmp_path / "changed.yaml", test_flags.changed())
    completed = subprocess.run(
        [*command, "--port", str(port), "--flag-file", str(flag_file), "--changed-file", str(changed)],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, f"client failed:\n{completed.stderr[-4000:]}"
    return json.loads(completed.stdout.strip().splitlines()[-1])


def check_report(report: dict[str, Any]) -> None:
    assert report["ready"] is True
    expected = expectations.results()
    assert set(report["results"]) == set(expected)
    for name, answer in expected.items():
        assert report["results"][name] == answer, name
    assert report["configurationChanged"] is True
    assert report["flagsChanged"] == ["changing-flag"]
    assert report["afterChange"] == expectations.after_change()


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed")
    if not (NODE_DIR / "node_modules" / "@openfeature" / "flagd-provider").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_DIR / "node_modules"


def test_python_provider(flagd_server, tmp_path):
    report = run_client(
        [sys.executable, str(HERE / "clients" / "py_client.py")],
        flagd_server.port,
        flagd_server.flag_file,
        tmp_path,
    )
    assert report["client"] == "python"
    check_report(report)


def test_node_provider(node_modules, flagd_server, tmp_path):
    report = run_client(
        ["node", str(NODE_DIR / "client.mjs")], flagd_server.port, flagd_server.flag_file, tmp_path
    )
    assert report["client"] == "node"
    check_report(report)
