"""`flag-sidecar` as a real process, for the tests that run it (the `serve` fixture is in conftest)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import eventually

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAG_SIDECAR_")}
    env["PYTHONUNBUFFERED"] = "1"
    # Not the fixed default port 8014: tests (and other sidecars) run side by side.
    env["FLAG_SIDECAR_MANAGEMENT_LISTEN"] = "127.0.0.1:0"
    return env


class ServeProcess:
    """`python -m sidecar.cli serve` on a free port; stderr is collected as it comes."""

    def __init__(self, flag_file: Path | None, *extra: str) -> None:
        """`flag_file` None: no --flags (`extra` names the source)."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sidecar.cli",
                "serve",
                *(("--flags", str(flag_file)) if flag_file is not None else ()),
                "--listen",
                "127.0.0.1:0",
                *extra,
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def address(self) -> str:
        def bound() -> str | None:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited early with {self.process.returncode}:\n{self.log}")
            match = re.search(r"listening on (\S+)", self.log)
            return match.group(1) if match else None

        return eventually(bound, timeout=15)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self._reader.join(5)


class SidecarProbes:
    """What a test reads off a running sidecar: its management endpoints and its gRPC health.
    A subclass sets `address` (the gRPC listener) and `management` (http://host:port)."""

    address: str
    management: str

    def get(self, path: str) -> tuple[int, str]:
        """GET a management path: (status, body), error statuses included."""
        try:
            with urllib.request.urlopen(self.management + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metric(self, name: str) -> float | None:
        """A sample's value; `name` may carry its labels, `name{label="value"}`."""
        match = re.search(rf"^{re.escape(name)} (\S+)$", self.get("/metrics")[1], re.MULTILINE)
        return float(match.group(1)) if match else None

    def health(self, service: str) -> str:
        """The gRPC health status of `service`, by name (SERVING, NOT_SERVING, ...)."""
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=service)
            status = stub.Check(request, timeout=5).status  # type: ignore[attr-defined]  # (stubs: no methods)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(status)
