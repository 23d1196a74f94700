"""Server CPU per Evaluate when the caller is Go (clients/go, grpc-go) and when it is Python
(grpcio), and Go's client-side latency next to the empty RPC's (issue 15's measured items).

    python -m bench.go_caller [--repeats N] [--calls N] [--concurrency N]

The Go load generator (clients/go/cmd/bench) is built once per run and speaks bench/load.py's
protocol, so bench.rpc.LoadGenerator drives both and reads the server's CPU around the measured
calls the same way. Evaluate goes through the public Go client; the empty RPC, which the client
does not know, through a raw ClientConn.Invoke. One sidecar (100 flags) and one empty-RPC server
(bench/servers.py) each have a grpcio caller and a Go caller (a process and a connection each).
In every repeat and case the callers take turns (the order alternating between repeats), each
measuring the empty RPC and then Evaluate back to back with the same request and concurrency;
then each caller's latency at concurrency 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import flagsets
from .rpc import REPO, LoadGenerator, Measurement, pin_to_cpus, server_process
from .servers import EMPTY_METHOD

CASES = ("static", "split")
CALLERS = ("python", "go")
FLAGS = 100
GO_CLIENT = REPO / "clients" / "go"


@dataclass
class GoCallerResults:
    calls: int
    concurrency: int
    # Per (caller, case): server CPU per call in µs of Evaluate, of the empty RPC measured right
    # before it by the same caller, and their ratio; per case, Go's CPU over Python's, same repeat.
    empty_us: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    cpu_us: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    vs_empty: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    go_vs_python: dict[str, list[float]] = field(default_factory=dict)
    empty_go_vs_python: dict[str, list[float]] = field(default_factory=dict)
    # Per (caller, what, concurrency), what being "empty RPC" or "Evaluate, CASE": client-side
    # latency percentiles in µs, one sample per measurement.
    p50_us: dict[tuple[str, str, int], list[float]] = field(default_factory=dict)
    p99_us: dict[tuple[str, str, int], list[float]] = field(default_factory=dict)

    def add_latency(self, caller: str, what: str, concurrency: int, measured: Measurement) -> None:
        self.p50_us.setdefault((caller, what, concurrency), []).append(measured.p50_us)
        self.p99_us.setdefault((caller, what, concurrency), []).append(measured.p99_us)


def build_go_load(directory: Path) -> Path:
    """clients/go/cmd/bench, compiled as the Makefile builds Go (local toolchain, go.sum's pins)."""
    binary = directory / "flag-sidecar-go-load"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    subprocess.run(
        [os.environ.get("GO", "go"), "build", "-o", str(binary), "./cmd/bench"],
        cwd=GO_CLIENT,
        env=env,
        check=True,
        timeout=600,
    )
    return binary


def run(flags_file: Path, repeats: int, calls: int, concurrency: int, pin: bool = False) -> GoCallerResults:
    results = GoCallerResults(calls=calls, concurrency=concurrency)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        commands = {"python": None, "go": [str(build_go_load(Path(tmp)))]}
        empty_server = stack.enter_context(server_process("empty", flags_file))
        sidecar_server = stack.enter_context(server_process("sidecar", flags_file))

        def caller(name: str, server_kind: str) -> LoadGenerator:
            server = empty_server if server_kind == "empty" else sidecar_server
            command = commands[name]
            load = stack.enter_context(
                LoadGenerator(server) if command is None else LoadGenerator(server, command)
            )
            if pin:  # servers on the first CPU, load generators on the second
                pin_to_cpus(server.pid, {0})
                pin_to_cpus(load.pid, {1})
            return load

        empty = {name: caller(name, "empty") for name in CALLERS}
        sidecar = {name: caller(name, "sidecar") for name in CALLERS}
        for repeat in range(repeats):
            order = CALLERS if repeat % 2 == 0 else CALLERS[::-1]
            for case in CASES:
                request = flagsets.evaluate_request(case)
                cpu: dict[str, tuple[float, float]] = {}
                for name in order:
                    floor = empty[name].measure(EMPTY_METHOD, b"", calls, concurrency)
                    mine = sidecar[name].measure(flagsets.EVALUATE_METHOD, request, calls, concurrency)
                    cpu[name] = (floor.cpu_us, mine.cpu_us)
                    results.empty_us.setdefault((name, case), []).append(floor.cpu_us)
                    results.cpu_us.setdefault((name, case), []).append(mine.cpu_us)
                    results.vs_empty.setdefault((name, case), []).append(mine.cpu_us / floor.cpu_us)
                    results.add_latency(name, "empty RPC", concurrency, floor)
                    results.add_latency(name, f"Evaluate, {case}", concurrency, mine)
                results.go_vs_python.setdefault(case, []).append(cpu["go"][1] / cpu["python"][1])
                results.empty_go_vs_python.setdefault(case, []).append(cpu["go"][0] / cpu["python"][0])
            if concurrency != 1:
                request = flagsets.evaluate_request(CASES[0])
                for name in order:
                    floor = empty[name].measure(EMPTY_METHOD, b"", calls // 2, 1)
                    mine = sidecar[name].measure(flagsets.EVALUATE_METHOD, request, calls // 2, 1)
                    results.add_latency(name, "empty RPC", 1, floor)
                    results.add_latency(name, f"Evaluate, {CASES[0]}", 1, mine)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        results = run(
            flagsets.write_flag_file(Path(directory), FLAGS), args.repeats, args.calls, args.concurrency
        )
    for case in CASES:
        print(
            f"Evaluate ({case}): server CPU go/python {statistics.median(results.go_vs_python[case]):.3f}x, "
            f"empty RPC go/python {statistics.median(results.empty_go_vs_python[case]):.3f}x"
        )
    for (caller, what, concurrency), p50 in results.p50_us.items():
        p99 = results.p99_us[(caller, what, concurrency)]
        print(
            f"{caller} -> {what}, {concurrency} clients: p50 {statistics.median(p50):.0f} µs, "
            f"p99 {statistics.median(p99):.0f} µs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
