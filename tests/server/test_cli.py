"""The flag-sidecar command, run as a real process: serve, signals, validate."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from tests.conftest import eventually

REPO = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

BROKEN_FLAGS = """\
flags:
  - key: checkout
    enabled: true
    variants:
      - {key: on, value: true}
      - {key: "off", value: false}
    defaultVariantWhenOn: "off"
    rules:
      - id: r1
        constraints:
          - {property: email, operation: MATCHES_REGEX, values: ["(unclosed"]}
        distributions:
          - {variant: "off", percentage: 60}
"""


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

    def __init__(self, flag_file: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sidecar.cli",
                "serve",
                "--flags",
                str(flag_file),
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


@pytest.fixture
def serve(sample_flag_file):
    started: list[ServeProcess] = []

    def start(*extra: str) -> ServeProcess:
        started.append(ServeProcess(sample_flag_file, *extra))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_gracefully_on_signal(serve, stop_signal):
    sidecar = serve("--shutdown-grace", "1")
    with grpc.insecure_channel(sidecar.address()) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        eventually(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING)
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        answer = stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="banner-color"), timeout=5)
        assert answer.evaluation.variant == "blue"

        # An open Watch stream is an in-flight call: it must see NOT_SERVING before the server goes.
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=20)
        assert next(watch).status == SERVING
        began = time.monotonic()
        sidecar.process.send_signal(stop_signal)
        assert next(watch).status == NOT_SERVING
        assert sidecar.process.wait(timeout=15) == 0, sidecar.log
        # The stream outlived the 1 s grace period, so shutdown waited for it, then cut it.
        assert 0.5 < time.monotonic() - began < 10
    sidecar.stop()
    assert f"received {stop_signal.name}" in sidecar.log
    assert "stopped" in sidecar.lines[-1]


def test_serve_on_a_broken_file_lists_every_problem_and_exits_1(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_FLAGS)
    result = run_cli("serve", "--flags", str(broken), "--listen", "127.0.0.1:0")
    assert result.returncode == 1
    assert "variant key must be a string" in result.stderr
    assert "invalid regular expression" in result.stderr
    assert "percentages sum to 60" in result.stderr
    assert "not serving" in result.stderr
    assert "listening" not in result.stderr


def test_serve_without_flags_is_a_usage_error():
    result = run_cli("serve")
    assert result.returncode == 2
    assert "flags is required: pass --flags PATH or set FLAG_SIDECAR_FLAGS" in result.stderr


def test_validate_a_good_file(sample_flag_file):
    result = run_cli("validate", str(sample_flag_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"OK: {sample_flag_file}: 5 flags, 1 segment"


def test_validate_a_broken_file_prints_one_problem_per_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_FLAGS)
    result = run_cli("validate", str(broken))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{broken}, flag 'checkout'") for line in lines)
    assert "3 problems" in result.stderr


def test_validate_a_missing_file(tmp_path):
    result = run_cli("validate", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr
