"""Server CPU per call, read from the server process's own accounting (/proc/PID/stat).

Each measurement starts a server process, warms it up, then runs a load-generator process and
reads the server's utime+stime before and after: CPU seconds / calls. The empty-RPC server is the
same SidecarServer with one empty method, measured in the same run, paired with each of ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def server_process(kind: str, flags_file: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """Start a bench server; yield (process, target, seconds from start to serving)."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", kind, str(flags_file), str(port_file)], cwd=REPO
        )
        try:
            while not port_file.exists() or not port_file.read_text():
                if process.poll() is not None:
                    raise RuntimeError(f"{kind} server exited with {process.returncode}")
                time.sleep(0.005)
            ready = time.perf_counter() - start
            yield process, f"127.0.0.1:{port_file.read_text()}", ready
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


def load(target: str, method: str, request: bytes, calls: int, concurrency: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.load", target, method, request.hex(), str(calls), str(concurrency)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output)


def cpu_per_call_us(
    process: subprocess.Popen[bytes], target: str, method: str, request: bytes, calls: int, concurrency: int
) -> float:
    load(target, method, request, max(calls // 10, 200), concurrency)  # warm-up
    before = cpu_seconds(process.pid)
    result = load(target, method, request, calls, concurrency)
    return (cpu_seconds(process.pid) - before) / result["calls"] * 1e6
