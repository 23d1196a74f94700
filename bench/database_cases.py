"""Evaluate with a database source (SQLite, PostgreSQL) against the file source and the empty RPC,
and an admin write's propagation to 20 sidecar processes on PostgreSQL (issue 13's targets).

    python -m bench.database_cases [--repeats N] [--calls N] [--concurrency N] [--sidecars 20]

The 100-flag file of section 1-2 is imported (`flag-sidecar flags import`) into an SQLite file
and into a PostgreSQL database on a server started for the run (tests/postgres_server.py; that part
is left out when no pg_ctl is found). Each bench server (bench/servers.py, BENCH_SOURCE=URI) then
follows its database as `serve --source URI` does: the set is compiled from the source cache and
evaluation reads the snapshot, so the database should cost nothing per call. CPU per call is
measured as in section 1-2, the four servers back to back in each repeat. Propagation is
bench/admin_propagation.py, run as its own command.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import flagsets, incremental_cases
from .rpc import REPO, LoadGenerator, pin_to_cpus, server_process
from .servers import EMPTY_METHOD

CASES = ("static", "split")
FLAGS = 100
SOURCES = ("file", "sqlite", "postgresql")


@dataclass
class DatabaseResults:
    # Per (source, case): CPU per call in µs, and per repeat the ratio to the empty RPC and to the
    # file source measured in the same repeat.
    empty_us: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    vs_empty: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    vs_file: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    propagation: str = ""  # bench/admin_propagation.py's line, "" when not run
    propagation_p50_ms: float | None = None
    propagation_p99_ms: float | None = None
    # A follower's CPU per write, the set rebuilt from the served one and in full (incremental_cases)
    incremental: incremental_cases.IncrementalResults | None = None
    sidecars: int = 0
    writes: int = 0
    calls: int = 0
    concurrency: int = 0


@contextlib.contextmanager
def _postgresql() -> Iterator[str | None]:
    """A fresh database on a PostgreSQL server of the run's own, or None without pg_ctl."""
    sys.path.insert(0, str(REPO))
    from tests import postgres_server

    if not postgres_server.available():
        yield None
        return
    with postgres_server.postgres_server() as server:
        yield postgres_server.fresh_database(server)


def _import(flags_file: Path, uri: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "flags", "import", str(flags_file), "--source", uri],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )


def propagation(uri: str, sidecars: int, writes: int, repo: Path = REPO) -> tuple[str, float, float]:
    """bench/admin_propagation.py on `uri` (the sidecars of checkout `repo`): its report line, p50
    and p99 in ms."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.admin_propagation",
            "--sidecars",
            str(sidecars),
            "--writes",
            str(writes),
            "--postgresql",
            uri,
            "--repo",
            str(repo),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise RuntimeError(f"bench.admin_propagation failed:\n{done.stderr[-3000:]}")
    line = done.stdout.strip().splitlines()[-1]
    match = re.search(r"p50 ([\d.]+) ms, p99 ([\d.]+) ms", line)
    if match is None:
        raise RuntimeError(f"no p50/p99 in {line!r}")
    return line, float(match.group(1)), float(match.group(2))


def run(
    flags_file: Path,
    repeats: int,
    calls: int,
    concurrency: int,
    sidecars: int = 20,
    writes: int = 50,
    pin: bool = False,
) -> DatabaseResults:
    results = DatabaseResults(calls=calls, concurrency=concurrency, sidecars=sidecars, writes=writes)
    with tempfile.TemporaryDirectory() as tmp, _postgresql() as postgresql, contextlib.ExitStack() as stack:
        uris = {"sqlite": f"sqlite://{tmp}/flags.db"} | ({"postgresql": postgresql} if postgresql else {})
        for uri in uris.values():
            _import(flags_file, uri)
        results.sources = ("file", *uris)

        def start(kind: str, uri: str | None = None) -> LoadGenerator:
            env = {"BENCH_SOURCE": uri} if uri else None
            server = stack.enter_context(server_process(kind, flags_file, env))
            generator = stack.enter_context(LoadGenerator(server))
            if pin:
                pin_to_cpus(server.pid, {0})
                pin_to_cpus(generator.pid, {1})
            return generator

        empty = start("empty")
        servers = {"file": start("sidecar")} | {name: start("sidecar", uri) for name, uri in uris.items()}
        for case in CASES:
            results.empty_us[case] = []
            for name in servers:
                for series in (results.cpu_us, results.vs_empty, results.vs_file):
                    series[(name, case)] = []
        for _ in range(repeats):
            for case in CASES:
                request = flagsets.evaluate_request(case)
                floor = empty.measure(EMPTY_METHOD, b"", calls, concurrency).cpu_us
                measured = {
                    name: server.measure(flagsets.EVALUATE_METHOD, request, calls, concurrency).cpu_us
                    for name, server in servers.items()
                }
                results.empty_us[case].append(floor)
                for name, cpu in measured.items():
                    results.cpu_us[(name, case)].append(cpu)
                    results.vs_empty[(name, case)].append(cpu / floor)
                    results.vs_file[(name, case)].append(cpu / measured["file"])
        stack.close()  # the bench servers off before 20 sidecars start on the same cores
        results.incremental = incremental_cases.run(FLAGS, 60)
        if postgresql and sidecars:
            line, p50, p99 = propagation(postgresql, sidecars, writes)
            results.propagation, results.propagation_p50_ms, results.propagation_p99_ms = line, p50, p99
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sidecars", type=int, default=20)
    parser.add_argument("--writes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flags_file = flagsets.write_flag_file(Path(tmp), FLAGS)
        results = run(flags_file, args.repeats, args.calls, args.concurrency, args.sidecars, args.writes)
    for case in CASES:
        for name in results.sources:
            print(
                f"Evaluate {case}, {name} source: {statistics.median(results.cpu_us[(name, case)]):.0f} us "
                f"(empty {statistics.median(results.empty_us[case]):.0f} us): "
                f"{statistics.median(results.vs_empty[(name, case)]):.3f}x empty, "
                f"{statistics.median(results.vs_file[(name, case)]):.3f}x file"
            )
    if results.incremental is not None:
        print("\n".join(incremental_cases.report(results.incremental)))
    print(results.propagation or "propagation: not run (no PostgreSQL)")


if __name__ == "__main__":
    main()
