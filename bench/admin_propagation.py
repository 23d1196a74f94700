"""Admin write -> every sidecar serving the new version (bench/notes.md, "Admin write to N sidecars").

    python -m bench.admin_propagation --sidecars 5 --writes 50 [--postgresql URI]

N `flag-sidecar serve` processes follow one database (SQLite file, or PostgreSQL with
--postgresql); one of them has the admin API. Each write is an UpdateFlag (a new version); one
client thread per sidecar calls Evaluate until it answers that version, and the time from the
write's answer to that moment is recorded. Reports p50 and p99 over writes x sidecars, and the
slowest sidecar per write.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from bench.sqlite_source import percentile
from flagsidecar.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

TOKEN = "bench-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
REPO = Path(__file__).resolve().parents[1]


def _start(source: str, extra: list[str], repo: Path = REPO) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAG_SIDECAR_")}
    env["FLAG_SIDECAR_MANAGEMENT_LISTEN"] = "off"
    process = subprocess.Popen(
        [sys.executable, "-m", "sidecar.cli", "serve", "--source", source, "--listen", "127.0.0.1:0", *extra],
        cwd=repo,  # `-m` imports the sidecar from there: another checkout's code, this one's bench
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[str] = []
    stderr = process.stderr
    assert stderr is not None

    def collect() -> None:  # each line as it comes: the caller reads the list while it grows
        for line in stderr:
            lines.append(line)

    threading.Thread(target=collect, daemon=True).start()
    return process, lines


def _wait_for(lines: list[str], pattern: str) -> str:
    deadline = time.monotonic() + 300  # 20 processes starting on 2 cores shared with other work
    while time.monotonic() < deadline:
        for line in list(lines):
            match = re.search(pattern, line)
            if match:
                return match.group(1)
        time.sleep(0.05)
    raise RuntimeError(f"no {pattern!r} in:\n{''.join(lines)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sidecars", type=int, default=5)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--postgresql", default=None, metavar="URI")
    # The clients share the 2 cores with the sidecars: a tighter loop measures the clients.
    parser.add_argument("--client-poll", type=float, default=0.001, metavar="SECONDS")
    # Another checkout whose sidecar to measure (A/B against main: bench/notes.md), same venv.
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-propagation-"))
    tokens = directory / "tokens"
    tokens.write_text(f"bench {TOKEN}\n")
    source = args.postgresql or f"sqlite://{directory}/flags.db"
    processes = []
    try:
        admin_process, admin_lines = _start(
            source, ["--admin-listen", "127.0.0.1:0", "--admin-token-file", str(tokens)], args.repo
        )
        processes.append((admin_process, admin_lines))
        for _ in range(args.sidecars - 1):
            processes.append(_start(source, [], args.repo))
        admin_address = _wait_for(admin_lines, r"admin API on (\S+)")
        addresses = [_wait_for(lines, r"listening on (\S+)") for _, lines in processes]
        admin = admin_pb2_grpc.FlagAdminServiceStub(grpc.insecure_channel(admin_address))
        stubs = [evaluation_pb2_grpc.EvaluationServiceStub(grpc.insecure_channel(a)) for a in addresses]
        flag = admin_pb2.NewFlag(key="bench", enabled=True, default_variant_when_on="on")
        flag.variants.add(key="on").value.bool_value = True
        version = admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag), metadata=AUTH).flag.flag.version
        request = evaluation_pb2.EvaluateRequest(flag_key="bench", user=evaluation_pb2.User(id="u"))

        def served(stub: evaluation_pb2_grpc.EvaluationServiceStub, wanted: int) -> float:
            while True:
                try:
                    if stub.Evaluate(request).evaluation.flag_version >= wanted:
                        return time.perf_counter()
                except grpc.RpcError:
                    pass
                time.sleep(args.client_poll)

        for stub in stubs:
            served(stub, version)
        delays: list[float] = []
        slowest: list[float] = []
        for index in range(args.writes):
            update = admin_pb2.UpdateFlagRequest(
                key="bench", expected_version=version, flag=admin_pb2.UpdateFlag(description=f"write {index}")
            )
            version = admin.UpdateFlag(update, metadata=AUTH).flag.flag.version
            written = time.perf_counter()
            times: list[float] = [0.0] * len(stubs)

            def follow(
                position: int,
                stub: evaluation_pb2_grpc.EvaluationServiceStub,
                wanted: int,
                times: list[float] = times,
                written: float = written,
            ) -> None:
                times[position] = served(stub, wanted) - written

            threads = [threading.Thread(target=follow, args=(i, s, version)) for i, s in enumerate(stubs)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            delays += times
            slowest.append(max(times))
            time.sleep(0.05)
        kind = "PostgreSQL" if args.postgresql else "SQLite"
        print(
            f"{kind}, {args.sidecars} sidecars, {args.writes} writes: write answered -> serving the new "
            f"version: p50 {statistics.median(delays) * 1000:.1f} ms, "
            f"p99 {percentile(delays, 0.99) * 1000:.1f} ms; "
            f"slowest sidecar per write p50 {statistics.median(slowest) * 1000:.1f} ms, "
            f"p99 {percentile(slowest, 0.99) * 1000:.1f} ms"
        )
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:  # 20 stopping at once on a loaded machine: the figures stand
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
