"""Server CPU per call, read from the server process's own accounting (/proc/PID/stat).

A bench server runs in its own process and a load generator (bench.load) in another. For each
measurement the load generator warms up, then the server's utime+stime is read right before and
right after the measured calls: CPU seconds / calls. Wall time plays no part in it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_ticks(pid: int) -> float:
    """utime + stime of the whole process (live and exited threads), in clock ticks (10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pin_to_cpus(pid: int, cpus: set[int]) -> None:
    """Run every thread of a process on `cpus` (threads it starts later inherit the mask)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(ProcessLookupError, FileNotFoundError):  # a thread that just exited
            os.sched_setaffinity(int(task.name), cpus)


def cpu_seconds(pid: int) -> float:
    """CPU time of the process's live threads, in nanoseconds (the scheduler's own sum_exec_runtime
    per thread, /proc/PID/task/TID/schedstat). /proc/PID/stat counts the same time in 10 ms ticks;
    this is its precise form, as long as no thread exits during a measurement (the bench servers'
    threads live as long as the process; `measure` checks the two agree)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just exited
    return total / 1e9


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, RssAnon) of a process in MB: all of its resident memory, and the private part."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["RssAnon"].split()[0]) / 1024


@dataclass
class Server:
    kind: str
    process: subprocess.Popen[bytes]
    target: str
    ready_s: float  # from spawn to listening

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def server_process(
    kind: str, flags_file: Path, env: Mapping[str, str] | None = None, root: Path = REPO
) -> Iterator[Server]:
    """Start a bench server (bench.servers KIND) from the tree at `root` (this one, or an older
    revision's sidecar/ with this bench/ copied in); stop it with SIGTERM on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", kind, str(flags_file), str(port_file)],
            cwd=root,
            env={**os.environ, **(env or {})},
        )
        try:
            while not port_file.exists() or not port_file.read_text():
                if process.poll() is not None:
                    raise RuntimeError(f"{kind} server exited with {process.returncode}")
                time.sleep(0.005)
            ready = time.perf_counter() - start
            yield Server(kind, process, f"127.0.0.1:{port_file.read_text()}", ready)
        finally:
            terminate(process)


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 30 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Measurement:
    cpu_us: float  # server CPU per call
    throughput: float  # calls per second (wall)
    p50_us: float
    p99_us: float
    calls: int


class LoadGenerator:
    """A bench.load process with one channel to `server`, driven over its stdin/stdout; or, with
    `command`, another program that speaks its protocol (the Go one, bench/go_caller.py)."""

    def __init__(self, server: Server, command: Sequence[str] = (sys.executable, "-m", "bench.load")) -> None:
        self.server = server
        self._process = subprocess.Popen(
            [*command, server.target],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def _send(self, line: str) -> dict[str, float]:
        stdin: IO[str] | None = self._process.stdin
        stdout: IO[str] | None = self._process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(line + "\n")
        stdin.flush()
        answer = stdout.readline()
        if not answer:
            raise RuntimeError(f"load generator for {self.server.kind} exited with {self._process.wait()}")
        result: dict[str, float] = json.loads(answer)
        return result

    def measure(
        self, method: str, request: bytes, calls: int, concurrency: int, warmup: int | None = None
    ) -> Measurement:
        command = {
            "method": method,
            "request": request.hex(),
            "calls": calls,
            "concurrency": concurrency,
            "warmup": max(calls // 10, 100) if warmup is None else warmup,
        }
        self._send(json.dumps(command))  # warm-up done when this returns
        before, before_ticks = cpu_seconds(self.server.pid), cpu_seconds_ticks(self.server.pid)
        result = self._send("go")
        used = cpu_seconds(self.server.pid) - before
        used_ticks = cpu_seconds_ticks(self.server.pid) - before_ticks
        if used_ticks > used + 0.05 + 0.1 * used:
            raise RuntimeError(f"{self.server.kind}: threads exited during a measurement; CPU unreliable")
        return Measurement(
            cpu_us=used / result["calls"] * 1e6,
            throughput=result["throughput"],
            p50_us=result["p50_us"],
            p99_us=result["p99_us"],
            calls=int(result["calls"]),
        )

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
