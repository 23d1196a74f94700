"""The Go flagd client (tests/flagd/go), built once per test session.

Its modules come from the committed go.sum (GOTOOLCHAIN=local, -mod=readonly, as the Makefile's
Go targets); Go's build cache makes a warm build a link step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GO_DIR = Path(__file__).parent / "go"
BUILD_TIMEOUT = 600  # a cold build compiles grpc-go and the provider on a shared 2-core machine


def build_go_client(into: Path) -> Path:
    """Builds the client into `into` and returns the binary's path; skips without a Go toolchain."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed")
    binary = into / "flagd-go-client"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    completed = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, f"go build failed:\n{completed.stderr[-4000:]}"
    return binary
