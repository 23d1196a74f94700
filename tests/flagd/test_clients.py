"""The real OpenFeature flagd providers (Python, Node, Java and Go, RPC resolver) against a running sidecar.

The sidecar is the real command (`python -m sidecar.cli serve`) with --flagd-listen,
--flagd-connect-listen, --context-value and --context-from-header; the Python client talks to the
--listen port (the native API's), the Node and Java clients to the --flagd-listen one, the Go client
(whose RPC mode speaks the Connect protocol) to the --flagd-connect-listen one. Each client runs in
its own process (clients/py_client.py, node/client.mjs, java/, go/): it waits for READY,
runs the checks of clients/checks.json, edits the flag file, waits for
PROVIDER_CONFIGURATION_CHANGED and prints a JSON report, which must match expectations.py.
The Node dependencies come from the committed package-lock.json (`npm ci`, also run by `make test`),
the Java ones from java/pom.xml's pinned versions (built once per session, java_client.py), the
Go ones from go/go.sum (go_client.py).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from flagd.evaluation.v2 import evaluation_pb2 as v2
from flagd.evaluation.v2 import evaluation_pb2_grpc as v2_grpc
from tests.conftest import eventually, write_flag_file
from tests.serve_process import ServeProcess

from . import expectations
from . import flags as test_flags
from .test_event_stream import StreamReader

HERE = Path(__file__).parent
NODE_DIR = HERE / "node"
CLIENT_TIMEOUT = 45


class Sidecar:
    def __init__(self, process: ServeProcess, flag_file: Path) -> None:
        self.process = process
        self.flag_file = flag_file

        def bound() -> list[int] | None:
            if process.process.poll() is not None:
                pytest.fail(f"serve exited early with {process.process.returncode}:\n{process.log}")
            ports = [int(port) for port in re.findall(r"listening on 127\.0\.0\.1:(\d+)", process.log)]
            return ports if len(ports) == 2 else None

        self.listen_port, self.flagd_port = eventually(bound, timeout=15)
        connect = eventually(lambda: re.search(r"flagd Connect protocol on 127\.0\.0\.1:(\d+)", process.log))
        self.connect_port = int(connect.group(1))
        self.terminated = False

    def terminate(self) -> None:
        """SIGTERM, once (a second one kills the process at once)."""
        if not self.terminated:
            self.terminated = True
            self.process.process.send_signal(signal.SIGTERM)


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[Sidecar]:
    flag_file = write_flag_file(tmp_path / "flags.yaml", test_flags.flags())
    context = [f"--context-value={key}={value}" for key, value in test_flags.STATIC_CONTEXT.items()]
    headers = [f"--context-from-header={name}={key}" for name, key in test_flags.HEADER_TO_CONTEXT.items()]
    process = ServeProcess(
        flag_file,
        "--flagd-listen",
        "127.0.0.1:0",
        "--flagd-connect-listen",
        "127.0.0.1:0",
        *context,
        *headers,
    )
    try:
        running = Sidecar(process, flag_file)
        yield running
        running.terminate()
        assert process.process.wait(timeout=15) == 0, process.log
    finally:
        process.stop()


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


def check_report(report: dict[str, Any], expected: dict[str, dict[str, Any]] | None = None) -> None:
    assert report["ready"] is True
    expected = expectations.results() if expected is None else expected
    assert set(report["results"]) == set(expected)
    for name, answer in expected.items():
        assert report["results"][name] == answer, name
    # The caller's default comes back at once, not after the provider retried to its 5 s deadline
    # (what an UNKNOWN status got); the bound is generous, only a retry loop can reach it.
    assert report["seconds"]["no-default"] < 2.5, report["seconds"]
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


def test_python_provider_on_the_native_port(sidecar, tmp_path):
    command = [sys.executable, str(HERE / "clients" / "py_client.py")]
    report = run_client(command, sidecar.listen_port, sidecar.flag_file, tmp_path)
    assert report["client"] == "python"
    check_report(report)


def test_node_provider_on_the_flagd_port(node_modules, sidecar, tmp_path):
    command = ["node", str(NODE_DIR / "client.mjs")]
    report = run_client(command, sidecar.flagd_port, sidecar.flag_file, tmp_path)
    assert report["client"] == "node"
    check_report(report)


def test_java_provider_on_the_flagd_port(java_client, sidecar, tmp_path):
    command = [*java_client, "rpc", "--spec", str(HERE / "clients" / "checks.json")]
    report = run_client(command, sidecar.flagd_port, sidecar.flag_file, tmp_path)
    assert report["client"] == "java"
    check_report(report, expectations.results() | expectations.JAVA_PROVIDER_NO_VALUE)


def test_go_provider_on_the_flagd_connect_port(go_client, sidecar, tmp_path):
    command = [str(go_client), "rpc", "--checks", str(HERE / "clients" / "checks.json")]
    report = run_client(command, sidecar.connect_port, sidecar.flag_file, tmp_path)
    assert report["client"] == "go"
    check_report(report)


def test_header_mapping_and_shutdown_through_the_command(sidecar):
    """--context-from-header maps gRPC metadata into the context; SIGTERM says provider_shutdown."""
    with grpc.insecure_channel(f"127.0.0.1:{sidecar.flagd_port}") as channel:
        stub = v2_grpc.ServiceStub(channel)
        request = v2.ResolveBooleanRequest(flag_key="header-flag")
        assert stub.ResolveBoolean(request, timeout=5, metadata=[("x-tenant", "acme")]).value is True
        assert stub.ResolveBoolean(request, timeout=5).value is False
        reader = StreamReader(channel)
        assert reader.next()[0] == "provider_ready"
        sidecar.terminate()
        assert reader.next() == ("provider_shutdown", {})
        assert reader.next()[0] == "end"
